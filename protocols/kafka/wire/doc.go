// Package wire is the Kafka wire codec of the ambassador: size-prefixed
// frames, request headers v0-v2 (flexible versions with tagged fields),
// response headers v0-v1, and the request and response bodies of every
// API key and version through franz-go's kmsg.
//
// It is pure: it parses and appends over []byte and bufio.Reader and knows
// nothing of clusters, configuration or metrics. Record batches are never
// decoded: kmsg keeps them as byte slices of the frame, so they pass
// through untouched (and compressed as they came).
package wire
