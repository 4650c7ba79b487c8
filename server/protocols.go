package server

import (
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/hashring"
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
		},
		{
			Name:    "kafka",
			Enabled: func(c *config.Config) bool { return c.Kafka.Enabled() },
			Listen:  func(c *config.Config) string { return c.Kafka.Listen },
			Nodes:   func(c *config.Config) []config.Node { return c.Kafka.BootstrapServers },
		},
	}
}
