// Package health keeps the health map of one backend cluster: the up or
// down state of every node, from active probes run every interval with a
// probe function the protocol supplies (a TCP connect by default) and from
// passive reports of the traffic itself.
//
// FailThreshold consecutive failures, from probes or from traffic, mark a
// node down; RiseThreshold consecutive passing probes bring it back (traffic
// alone never does, since a down node gets none). Subscribers are told of
// every change, and Snapshot feeds the admin endpoint.
package health
