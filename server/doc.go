// Package server wires one ambassador process: from a config.Config it
// builds each enabled frontend with its backend cluster, the admin HTTP
// endpoint and the metrics registry, and runs them until its context ends.
// It owns every goroutine it starts and waits for them; nothing here exits
// the process.
package server
