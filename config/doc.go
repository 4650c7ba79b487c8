// Package config holds the ambassador's one typed configuration and builds it
// from, in rising precedence: defaults, a YAML file, environment variables
// (the names of the classic ambassador sidecar specs) and command-line flags.
//
// Decoding is strict: an unknown file key, a malformed duration, an unknown
// policy or an address without a port is an error that names the key or the
// variable and the bad value. Validate collects every error, so that
// `ambassador validate` can print them all at once.
package config
