// Package resp is the RESP codec of the Redis frontend: it parses requests
// (RESP2/RESP3 multibulk and inline commands) in place over a byte buffer,
// finds the end of replies of every RESP2 and RESP3 type without building
// them, and appends replies and commands. It imports nothing from the rest
// of the ambassador.
//
// Parsing is zero-copy: a parsed command's arguments are slices of the
// caller's buffer, valid until the buffer is reused. Request limits are
// those of Redis (proto-max-bulk-len, the multibulk count, the inline
// size), with Redis's own error messages.
package resp
