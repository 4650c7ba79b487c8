package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

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
	p.atLeastDuration("health.interval", c.Health.Interval, minHealthInterval, false)
	p.positive("health.timeout", int64(c.Health.Timeout))
	p.atLeast("health.fail_threshold", c.Health.FailThreshold, 1)
	p.atLeast("health.rise_threshold", c.Health.RiseThreshold, 1)
	p.atLeast("circuit_breaker.failure_threshold", c.CircuitBreaker.FailureThreshold, 1)
	p.positive("circuit_breaker.open_timeout", int64(c.CircuitBreaker.OpenTimeout))
	p.atLeast("limits.max_connections", c.Limits.MaxConnections, 0)
	p.positive("limits.connection_timeout", int64(c.Limits.ConnectionTimeout))
	p.atLeastDuration("config_reload_interval", c.ConfigReloadInterval, minConfigReloadInterval, true)
	if c.ConfigReloadInterval > 0 && c.File == "" {
		p.add("config_reload_interval", "needs a config file (--config or AMBASSADOR_CONFIG) to poll; without one only SIGHUP reloads")
	}
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
		if r.MaxMultibulkLen > 1<<31-1 {
			p.add("redis.max_multibulk_len", "%d is over 2147483647, Redis's own limit", r.MaxMultibulkLen)
		}
		for name, pw := range r.FrontendUsers {
			switch {
			case name == "" || strings.ContainsAny(name, " \t"):
				p.add("redis.frontend_users", "bad user name %q", name)
			case name == "default":
				p.add("redis.frontend_users", "user \"default\" is set by redis.frontend_password (REDIS_FRONTEND_PASSWORD)")
			case pw == "":
				p.add("redis.frontend_users", "user %q has an empty password (anyone could log in as it)", name)
			}
		}
	}
	// Not supported yet, so refused whichever frontends are on (a spec
	// that sets them expects them to act).
	if r.ClusterMode {
		p.add("redis.cluster_mode", "Redis Cluster backends are not supported yet (a later issue); unset it to shard standalone nodes on the hash ring")
	}
	if c.RabbitMQ.ConnectionPooling {
		p.add("rabbitmq.connection_pooling", "the RabbitMQ frontend is not supported yet (a later issue)")
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
		for _, n := range k.BootstrapServers {
			if n.Name != "" {
				p.add("kafka.bootstrap_servers", "node %s: a name (%q) means nothing for a bootstrap server; list addresses, comma-separated", n.Addr, n.Name)
			}
			if n.Weight > 1 {
				p.add("kafka.bootstrap_servers", "node %s: a weight (%d) means nothing for a bootstrap server", n.Addr, n.Weight)
			}
			if n.Region != "" {
				p.add("kafka.bootstrap_servers", "node %s: a region (%q) means nothing for a bootstrap server", n.Addr, n.Region)
			}
		}
		p.atLeastDuration("kafka.metadata_refresh", k.MetadataRefresh, minMetadataRefresh, false)
		if k.MaxRequestSize < 1024 {
			p.add("kafka.max_request_size", "%d is under 1024 bytes", k.MaxRequestSize)
		}
		p.kafkaSecurity(k)
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
	p.list = append(p.list, p.label(key)+": "+fmt.Sprintf(format, args...))
}

// hint names a key to set: where it was set, or when it has its default,
// the key and its variable ("kafka.tls.enabled (or KAFKA_TLS)").
func (p *problems) hint(key string) string {
	if p.c.Source(key) != "default" {
		return p.label(key)
	}
	for _, s := range settings {
		if s.Key == key && len(s.Env) > 0 {
			return key + " (or " + s.Env[0] + ")"
		}
	}
	return key
}

// label names a key and where it was set: "key (VARIABLE)", "key
// (--flag)", "file: key", or the key alone when it has its default.
func (p *problems) label(key string) string {
	src := p.c.Source(key)
	switch {
	case src == "default":
		return key
	case strings.HasSuffix(src, ": "+key):
		return src
	default:
		return key + " (" + src + ")"
	}
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

// Lower bounds of the intervals that drive a loop: a tiny value would
// make it spin.
const (
	minHealthInterval       = 100 * time.Millisecond
	minMetadataRefresh      = time.Second
	minConfigReloadInterval = 50 * time.Millisecond
)

// atLeastDuration refuses a duration under min; zero too unless zeroOK
// (zero meaning off).
func (p *problems) atLeastDuration(key string, v Duration, min time.Duration, zeroOK bool) {
	switch {
	case v == 0 && zeroOK:
	case v <= 0:
		p.add(key, "must be greater than zero (at least %v)", min)
	case v.D() < min:
		p.add(key, "%v is under the minimum of %v", v, min)
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
		if err := CheckNodeAddr(n.Addr); err != nil {
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
		if n.Weight < 0 || n.Weight > 10000 {
			p.add(key, "node %s: weight %d is not from 1 to 10000", n.Addr, n.Weight)
		}
	}
}

// kafkaSecurity checks TLS and SASL to the brokers as the Kafka frontend
// will use them (protocols/kafka newSecurity), so that what validates also
// starts: no setting that would be ignored, files that load.
func (p *problems) kafkaSecurity(k *Kafka) {
	t := &k.TLS
	if !t.Enabled {
		for _, s := range []struct {
			key string
			set bool
		}{
			{"kafka.tls.ca_file", t.CAFile != ""},
			{"kafka.tls.cert_file", t.CertFile != ""},
			{"kafka.tls.key_file", t.KeyFile != ""},
			{"kafka.tls.server_name", t.ServerName != ""},
			{"kafka.tls.insecure_skip_verify", t.InsecureSkipVerify},
		} {
			if s.set {
				p.add(s.key, "is set but TLS to the brokers is off: enable %s, or unset this", p.hint("kafka.tls.enabled"))
			}
		}
	} else {
		if t.CAFile != "" {
			if pem, err := os.ReadFile(t.CAFile); err != nil {
				p.add("kafka.tls.ca_file", "%v", err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				p.add("kafka.tls.ca_file", "%s: no PEM certificate in it", t.CAFile)
			}
		}
		switch {
		case t.CertFile != "" && t.KeyFile == "":
			p.add("kafka.tls.cert_file", "needs %s too", p.hint("kafka.tls.key_file"))
		case t.CertFile == "" && t.KeyFile != "":
			p.add("kafka.tls.key_file", "needs %s too", p.hint("kafka.tls.cert_file"))
		case t.CertFile != "":
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				p.add("kafka.tls.cert_file", "with %s: %v", p.hint("kafka.tls.key_file"), err)
			}
		}
	}
	s := &k.SASL
	switch s.Mechanism {
	case "":
		if s.Username != "" {
			p.add("kafka.sasl.username", "is set but no SASL mechanism is: set %s to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or unset this", p.hint("kafka.sasl.mechanism"))
		}
		if s.Password != "" {
			p.add("kafka.sasl.password", "is set but no SASL mechanism is: set %s to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or unset this", p.hint("kafka.sasl.mechanism"))
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if s.Username == "" {
			p.add("kafka.sasl.username", "is needed by the SASL mechanism %s: set %s", s.Mechanism, p.hint("kafka.sasl.username"))
		}
		if s.Password == "" {
			p.add("kafka.sasl.password", "is needed by the SASL mechanism %s: set %s", s.Mechanism, p.hint("kafka.sasl.password"))
		}
	default:
		p.add("kafka.sasl.mechanism", "%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
}
