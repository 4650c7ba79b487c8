package harness

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaCluster is an in-process Kafka cluster from franz-go's kfake, one
// 127.0.0.1 listener per broker. The embedded *kfake.Cluster gives the
// fault controls (MoveTopicPartition, ShufflePartitionLeaders,
// RemoveNode, AddNode, Control...) and Close.
type KafkaCluster struct {
	*kfake.Cluster
	Addrs []string // broker addresses at start; ListenAddrs for the current set
}

// StartKafka starts a kfake cluster of brokers brokers. Each listens on a
// port the kernel picks (so no other process can race for it) unless opts
// hold kfake.Ports. opts come after NumBrokers and may override it, e.g.
// kfake.SeedTopics(3, "events") or kfake.AllowAutoTopicCreation().
func StartKafka(brokers int, opts ...kfake.Opt) (*KafkaCluster, error) {
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(brokers)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("harness: kfake: %w", err)
	}
	return &KafkaCluster{Cluster: c, Addrs: c.ListenAddrs()}, nil
}

// NewKafka starts a kfake cluster for a test and closes it when the test
// ends.
func NewKafka(t testing.TB, brokers int, opts ...kfake.Opt) *KafkaCluster {
	t.Helper()
	c, err := StartKafka(brokers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
