package frontend

import "syscall"

var syscallEMFILE = syscall.EMFILE

// CloseReason says why a client connection ended (nats' ClosedState).
type CloseReason int

// Close reasons.
const (
	ReasonClientClosed  CloseReason = iota // the client closed or sent QUIT
	ReasonReadError                        // reading from the client failed
	ReasonWriteError                       // writing to the client failed
	ReasonProtocolError                    // the client broke the protocol
	ReasonTooLarge                         // a request over the size limit
	ReasonIdleTimeout                      // no request within the idle timeout
	ReasonAuthFailed                       // authentication failed
	ReasonShutdown                         // the server is shutting down
	ReasonBackendError                     // a backend failure the connection cannot survive
	ReasonPanic                            // a bug: the handler panicked
)

var reasonNames = [...]string{
	ReasonClientClosed:  "client_closed",
	ReasonReadError:     "read_error",
	ReasonWriteError:    "write_error",
	ReasonProtocolError: "protocol_error",
	ReasonTooLarge:      "too_large",
	ReasonIdleTimeout:   "idle_timeout",
	ReasonAuthFailed:    "auth_failed",
	ReasonShutdown:      "shutdown",
	ReasonBackendError:  "backend_error",
	ReasonPanic:         "panic",
}

func (r CloseReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}
