// Package commands is the Redis command table of the ambassador's Redis
// frontend: one Command per command and subcommand that redis-server
// reports in COMMAND, with its arity, flags, legacy key positions, key
// specifications, ACL categories, tips (request_policy / response_policy,
// which tell a router how to fan a command out and merge the replies),
// its COMMAND DOCS group and summary, and the exact RESP2 and RESP3 bytes
// of its COMMAND INFO entry, so that the proxy can answer COMMAND, COMMAND
// INFO, COMMAND COUNT and COMMAND LIST itself.
//
// Lookup and Command.Sub find commands case-insensitively without
// allocating; Command.Keys returns the indexes of the key arguments of a
// command line, movable keys included, exactly as the server's COMMAND
// GETKEYS does, and the server's own error for malformed numkeys.
//
// The package is pure: it imports only the standard library.
//
// # Regenerating
//
// zz_generated.go is written by internal/gen from a real redis-server
// (7.0.15 today), which it starts on a free loopback port:
//
//	go generate ./protocols/redis/commands/
//
// The tests start a redis-server too and fail when the table no longer
// matches what the installed server reports (apt-get install -y
// redis-server). Command flags or key-spec flags that a newer server
// introduces stop the generator until they are added to flags.go and to
// internal/gen; commands with a new getkeys procedure belong in
// getkeysRules (keys.go).
package commands

//go:generate go run ./internal/gen -o zz_generated.go
