package config

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/ambassador-proxy/ambassador/hashring"
)

// Policies are the balancing policies a cluster accepts.
var Policies = []string{"round_robin", "least_connections", "latency_based"}

// Validate checks every setting and returns all problems at once, each
// naming its key (and the variable, flag or file it came from) and the bad
// value.
func (c *Config) Validate() error {
	var p problems
	p.c = c
	p.addr("admin.listen", c.Admin.Listen)
	p.oneOf("log.level", c.Log.Level, []string{"debug", "info", "warn", "error"})
	p.oneOf("log.format", c.Log.Format, []string{"text", "json"})
	p.oneOf("load_balance", c.LoadBalance, Policies)
	p.positive("health.interval", int64(c.Health.Interval))
	p.positive("health.timeout", int64(c.Health.Timeout))
	p.atLeast("health.fail_threshold", c.Health.FailThreshold, 1)
	p.atLeast("health.rise_threshold", c.Health.RiseThreshold, 1)
	p.atLeast("circuit_breaker.failure_threshold", c.CircuitBreaker.FailureThreshold, 1)
	p.positive("circuit_breaker.open_timeout", int64(c.CircuitBreaker.OpenTimeout))
	p.atLeast("limits.max_connections", c.Limits.MaxConnections, 0)
	p.positive("limits.connection_timeout", int64(c.Limits.ConnectionTimeout))
	for _, r := range c.RegionPreference {
		if strings.ContainsAny(r, " @,") {
			p.add("region_preference", "bad region %q", r)
		}
	}

	listens := map[string]string{c.Admin.Listen: "admin.listen"}
	listen := func(key, addr string) {
		if !p.addr(key, addr) {
			return
		}
		if _, port, _ := net.SplitHostPort(addr); port == "0" {
			return // any free port: never the same as another listener
		}
		if other, ok := listens[addr]; ok {
			p.add(key, "%q is also %s", addr, other)
		}
		listens[addr] = key
	}

	r := &c.Redis
	if r.Enabled() {
		listen("redis.listen", r.Listen)
		p.nodes("redis.nodes", r.Nodes)
		p.oneOf("redis.hash", r.Hash, hashring.Hashes())
		p.oneOf("redis.distribution", r.Distribution, hashring.Distributions())
		if r.HashTag != "" && len(r.HashTag) != 2 {
			p.add("redis.hash_tag", "%q is not two characters (e.g. {})", r.HashTag)
		}
		p.atLeast("redis.pool_size", r.PoolSize, 1)
		if r.PoolSize > 256 {
			p.add("redis.pool_size", "%d is over 256", r.PoolSize)
		}
		p.positive("redis.request_timeout", int64(r.RequestTimeout))
		p.positive("redis.max_bulk_len", r.MaxBulkLen)
		p.positive("redis.max_multibulk_len", r.MaxMultibulkLen)
		if r.ClusterMode {
			p.add("redis.cluster_mode", "Redis Cluster backends are not supported yet (a later issue); unset it to shard standalone nodes on the hash ring")
		}
		for name := range r.FrontendUsers {
			if name == "" || strings.ContainsAny(name, " \t") {
				p.add("redis.frontend_users", "bad user name %q", name)
			}
		}
	}
	if c.RabbitMQ.Enabled() {
		listen("rabbitmq.listen", c.RabbitMQ.Listen)
		p.nodes("rabbitmq.nodes", c.RabbitMQ.Nodes)
		p.add("rabbitmq.nodes", "the RabbitMQ frontend is not supported yet (a later issue)")
	}
	k := &c.Kafka
	if k.Enabled() {
		listen("kafka.listen", k.Listen)
		if k.AdvertisedAddr != "" {
			p.addr("kafka.advertised_addr", k.AdvertisedAddr)
		}
		p.nodes("kafka.bootstrap_servers", k.BootstrapServers)
		p.positive("kafka.metadata_refresh", int64(k.MetadataRefresh))
		if k.MaxRequestSize < 1024 {
			p.add("kafka.max_request_size", "%d is under 1024 bytes", k.MaxRequestSize)
		}
		switch strings.ToUpper(k.SASL.Mechanism) {
		case "":
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			if k.SASL.Username == "" || k.SASL.Password == "" {
				p.add("kafka.sasl", "mechanism %s needs a username and a password", k.SASL.Mechanism)
			}
		default:
			p.add("kafka.sasl.mechanism", "%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", k.SASL.Mechanism)
		}
		if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
			p.add("kafka.tls", "cert_file and key_file go together")
		}
	}
	if !r.Enabled() && !c.RabbitMQ.Enabled() && !k.Enabled() {
		p.list = append(p.list, "nothing to proxy: set REDIS_CLUSTER_NODES (or REDIS_BACKENDS), KAFKA_BOOTSTRAP_SERVERS (or KAFKA_BACKENDS), or the nodes of a frontend in the --config file")
	}
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: p.list}
}

type problems struct {
	c    *Config
	list []string
}

func (p *problems) add(key, format string, args ...any) {
	src := p.c.Source(key)
	label := key
	if src != "default" && !strings.HasSuffix(src, ": "+key) {
		label = key + " (" + src + ")"
	} else if src != "default" {
		label = src
	}
	p.list = append(p.list, label+": "+fmt.Sprintf(format, args...))
}

func (p *problems) addr(key, v string) bool {
	if err := CheckAddr(v); err != nil {
		p.add(key, "%v", err)
		return false
	}
	return true
}

func (p *problems) oneOf(key, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		p.add(key, "unknown value %q (want one of %s)", v, strings.Join(allowed, ", "))
	}
}

func (p *problems) positive(key string, v int64) {
	if v <= 0 {
		p.add(key, "must be greater than zero")
	}
}

func (p *problems) atLeast(key string, v, min int) {
	if v < min {
		p.add(key, "%d is less than %d", v, min)
	}
}

func (p *problems) nodes(key string, nodes []Node) {
	seen := map[string]bool{}
	names := map[string]bool{}
	for _, n := range nodes {
		if err := CheckAddr(n.Addr); err != nil {
			p.add(key, "%v", err)
		}
		if seen[n.Addr] {
			p.add(key, "node %s is listed twice", n.Addr)
		}
		seen[n.Addr] = true
		if n.Name != "" {
			if names[n.Name] {
				p.add(key, "node name %q is used twice", n.Name)
			}
			names[n.Name] = true
		}
		if n.Weight < 0 {
			p.add(key, "node %s: weight %d is negative", n.Addr, n.Weight)
		}
	}
}
