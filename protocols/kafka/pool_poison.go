//go:build kafkapoison

package kafka

// poisonFrames scribbles over every frame returned to the pool, so that a
// response still pointing into one (a reference counting bug) sends
// garbage that the clients' CRC checks catch: go test -tags kafkapoison.
const poisonFrames = true
