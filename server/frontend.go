package server

import (
	"context"
	"net"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
)

// Frontend is what a protocol package provides to the server.
type Frontend interface {
	// Serve accepts clients on ln until Shutdown, then returns nil.
	Serve(ln net.Listener) error
	// Shutdown stops accepting, drains connections until ctx ends, then
	// closes the rest.
	Shutdown(ctx context.Context) error
}

// Reloader is a frontend that takes a new configuration without dropping
// its clients. It must leave its old state in place when it returns an
// error.
type Reloader interface {
	Reload(cfg *config.Config) error
}

// ReloadChecker is a Reloader that tells whether it would refuse a
// configuration. The server asks every frontend before any applies
// anything, so that a refused reload leaves all of them as they were.
type ReloadChecker interface {
	CheckReload(cfg *config.Config) error
}

// Readier is a frontend with readiness conditions of its own beyond its
// clusters having a healthy node (e.g. Kafka metadata loaded).
type Readier interface {
	Ready() error
}

// frontendEntry is one enabled frontend with its listener and clusters.
type frontendEntry struct {
	name     string
	listen   string
	fe       Frontend
	clusters []*cluster.Cluster
	ln       net.Listener
}
