// Package frontend is the TCP server every protocol frontend shares: the
// accept loop, the connection limit, one goroutine per client with panic
// recovery and a typed close reason, connection accounting, and graceful
// shutdown (stop accepting, let connections drain until a deadline, then
// close what is left).
package frontend
