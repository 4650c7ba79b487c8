package server

import (
	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/hashring"
	"github.com/ambassador-proxy/ambassador/health"
	"github.com/ambassador-proxy/ambassador/protocols/kafka"
	"github.com/ambassador-proxy/ambassador/protocols/redis"
)

// DefaultProtocols are the frontends of this build.
func DefaultProtocols() []Protocol {
	return []Protocol{
		{
			Name:    "redis",
			Enabled: func(c *config.Config) bool { return c.Redis.Enabled() },
			Listen:  func(c *config.Config) string { return c.Redis.Listen },
			Nodes:   func(c *config.Config) []config.Node { return c.Redis.Nodes },
			Ring: func(c *config.Config) hashring.Config {
				return hashring.Config{Hash: c.Redis.Hash, Distribution: c.Redis.Distribution, HashTag: c.Redis.HashTag}
			},
			AutoEject: func(c *config.Config) bool { return c.Redis.AutoEject },
			Probe:     func(cur func() *config.Config) health.ProbeFunc { return redis.ProbeCurrent(cur) },
			Build: func(c *config.Config, cl *cluster.Cluster, d Deps) (Frontend, error) {
				return redis.New(redis.Options{Config: c, Cluster: cl, Logger: d.Logger, Registry: d.Registry, FrontendMetrics: d.FrontendMetrics})
			},
		},
		{
			Name:    "kafka",
			Enabled: func(c *config.Config) bool { return c.Kafka.Enabled() },
			Listen:  func(c *config.Config) string { return c.Kafka.Listen },
			Nodes:   func(c *config.Config) []config.Node { return c.Kafka.BootstrapServers },
			Probe:   func(cur func() *config.Config) health.ProbeFunc { return kafka.Probe(cur()) }, // TLS and SASL need a restart
			Build: func(c *config.Config, cl *cluster.Cluster, d Deps) (Frontend, error) {
				return kafka.New(c, cl, kafka.Deps{Logger: d.Logger, Registry: d.Registry, FrontendMetrics: d.FrontendMetrics})
			},
		},
	}
}
