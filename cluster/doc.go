// Package cluster holds the node set of one backend cluster, its health
// map, its hash ring and its balancing policy. It knows nothing of any
// protocol: a frontend hands in a probe function (package health) and asks
// Pick() for a node chosen by policy, or PickKey(key) for the node the
// ring places a key on.
//
// Policies: round_robin (weighted), least_connections (active requests per
// weight) and latency_based (power of two choices over an EWMA of observed
// latency times active requests). With a region preference, the first
// listed region that has an available node is used. A per-node circuit
// breaker, when enabled, opens after consecutive request failures and lets
// one trial request through after its timeout.
package cluster
