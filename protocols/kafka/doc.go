// Package kafka is the ambassador's Kafka frontend: the whole backend
// cluster behind one localhost broker. Clients bootstrap from the
// ambassador and see a one-broker cluster in which the ambassador is the
// controller, every coordinator and the leader of every partition; the
// ambassador routes each partition to its real leader and each group or
// transactional id to its real coordinator, and rewrites every broker id
// and address in responses to its own, so that no backend address reaches
// a client.
//
// The codec lives in the pure subpackage wire. This package holds the
// client connections (one reader goroutine each, concurrent processing,
// responses written in request order), the backend connections (own
// pipelined connections per client connection and broker, so that a
// client's requests reach each broker in the order it sent them), the
// backend metadata and coordinator caches (through franz-go's kgo), and
// one file per API family with its routing and merging.
package kafka
