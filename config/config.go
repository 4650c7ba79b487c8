package config

import (
	"time"
)

// Config is the whole configuration of one ambassador process.
type Config struct {
	Admin  Admin  `yaml:"admin" json:"admin"`
	Log    Log    `yaml:"log" json:"log"`
	Health Health `yaml:"health" json:"health"`
	// CircuitBreaker is the per-node breaker every backend cluster uses.
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker"`
	// LoadBalance is the balancing policy of Pick() in every backend
	// cluster: round_robin, least_connections or latency_based.
	LoadBalance string `yaml:"load_balance" json:"load_balance"`
	// RegionPreference lists regions in order of preference; a node's
	// region comes with its address.
	RegionPreference []string `yaml:"region_preference" json:"region_preference"`
	Limits           Limits   `yaml:"limits" json:"limits"`
	// ConfigReloadInterval, when set, polls the config file and reloads
	// the node lists when its content changes. SIGHUP always reloads.
	ConfigReloadInterval Duration `yaml:"config_reload_interval" json:"config_reload_interval"`
	// ShutdownTimeout bounds how long SIGTERM waits for client
	// connections to drain.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`

	Redis    Redis    `yaml:"redis" json:"redis"`
	RabbitMQ RabbitMQ `yaml:"rabbitmq" json:"rabbitmq"`
	Kafka    Kafka    `yaml:"kafka" json:"kafka"`

	// File is the config file this configuration was read from, if any.
	File string `yaml:"-" json:"-"`
	// sources records where each setting came from, by key.
	sources map[string]string
}

// Admin is the admin HTTP endpoint.
type Admin struct {
	Listen string `yaml:"listen" json:"listen"`
}

// Log selects the log level and format.
type Log struct {
	Level  string `yaml:"level" json:"level"`   // debug, info, warn, error
	Format string `yaml:"format" json:"format"` // json, text
}

// Health sets the active probes and the thresholds of the health map.
type Health struct {
	Interval Duration `yaml:"interval" json:"interval"`
	Timeout  Duration `yaml:"timeout" json:"timeout"`
	// FailThreshold consecutive failures (probes or traffic) mark a node down.
	FailThreshold int `yaml:"fail_threshold" json:"fail_threshold"`
	// RiseThreshold consecutive passing probes bring a down node back up.
	RiseThreshold int `yaml:"rise_threshold" json:"rise_threshold"`
}

// CircuitBreaker opens a node's breaker after consecutive request failures
// and lets one trial request through after OpenTimeout.
type CircuitBreaker struct {
	Enabled          bool     `yaml:"enabled" json:"enabled"`
	FailureThreshold int      `yaml:"failure_threshold" json:"failure_threshold"`
	OpenTimeout      Duration `yaml:"open_timeout" json:"open_timeout"`
}

// Limits apply to every frontend.
type Limits struct {
	// MaxConnections caps client connections per frontend; 0 = no cap.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// ConnectionTimeout bounds dialing a backend node.
	ConnectionTimeout Duration `yaml:"connection_timeout" json:"connection_timeout"`
	// IdleTimeout closes a client connection idle that long; 0 = never.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
}

// Redis is the Redis frontend and its backend nodes.
type Redis struct {
	Listen string `yaml:"listen" json:"listen"`
	Nodes  []Node `yaml:"nodes" json:"nodes"`
	// ClusterMode means the backends form a Redis Cluster.
	ClusterMode bool `yaml:"cluster_mode" json:"cluster_mode"`
	// Hash, Distribution and HashTag place keys on the ring; see package
	// hashring. ConsistentHashing=false is distribution "modula".
	Hash         string `yaml:"hash" json:"hash"`
	Distribution string `yaml:"distribution" json:"distribution"`
	HashTag      string `yaml:"hash_tag" json:"hash_tag"`
	// AutoEject rehashes a down node's keys onto the others, like
	// twemproxy's auto_eject_hosts; by default they get an error instead.
	AutoEject bool `yaml:"auto_eject" json:"auto_eject"`
	// Username and Password authenticate the ambassador to the backends.
	Username string `yaml:"username" json:"username"`
	Password Secret `yaml:"password" json:"password"`
	// FrontendPassword, when set, is required from clients (AUTH).
	FrontendPassword Secret `yaml:"frontend_password" json:"frontend_password"`
	// FrontendUsers are ACL users (name -> password) accepted from clients.
	FrontendUsers map[string]Secret `yaml:"frontend_users" json:"frontend_users"`
	// PoolSize is the number of multiplexed connections per backend node.
	PoolSize int `yaml:"pool_size" json:"pool_size"`
	// RequestTimeout bounds the wait for a backend reply.
	RequestTimeout Duration `yaml:"request_timeout" json:"request_timeout"`
	// MaxBulkLen and MaxMultibulkLen are the request limits, as Redis's
	// proto-max-bulk-len and its multibulk count limit.
	MaxBulkLen      int64 `yaml:"max_bulk_len" json:"max_bulk_len"`
	MaxMultibulkLen int64 `yaml:"max_multibulk_len" json:"max_multibulk_len"`
}

// Enabled reports whether the Redis frontend is on.
func (r *Redis) Enabled() bool { return len(r.Nodes) > 0 }

// RabbitMQ is the AMQP 0-9-1 frontend and its backend nodes.
type RabbitMQ struct {
	Listen            string `yaml:"listen" json:"listen"`
	Nodes             []Node `yaml:"nodes" json:"nodes"`
	ConnectionPooling bool   `yaml:"connection_pooling" json:"connection_pooling"`
}

// Enabled reports whether the RabbitMQ frontend is on.
func (r *RabbitMQ) Enabled() bool { return len(r.Nodes) > 0 }

// Kafka is the Kafka frontend and its backend cluster.
type Kafka struct {
	Listen string `yaml:"listen" json:"listen"`
	// AdvertisedAddr is the host:port clients are told to connect to;
	// default Listen.
	AdvertisedAddr   string `yaml:"advertised_addr" json:"advertised_addr"`
	BootstrapServers []Node `yaml:"bootstrap_servers" json:"bootstrap_servers"`
	// MetadataRefresh is how often backend metadata is refreshed.
	MetadataRefresh Duration `yaml:"metadata_refresh" json:"metadata_refresh"`
	// MaxRequestSize closes a client connection that sends a larger
	// request, like socket.request.max.bytes.
	MaxRequestSize int32 `yaml:"max_request_size" json:"max_request_size"`
	// FetchReadAhead lets the ambassador fetch a partition's next records
	// while the client processes the last ones (at most one fetch per
	// broker and client connection ahead).
	FetchReadAhead bool `yaml:"fetch_read_ahead" json:"fetch_read_ahead"`
	// AdminRequests, when false, refuses the requests that change the
	// cluster or its security (topics, partitions, configs, ACLs, SCRAM
	// users, quotas, features, leader elections, record deletion) and
	// those that read its security (ACLs, SCRAM users, quotas): clients
	// act with the ambassador's backend identity.
	AdminRequests bool `yaml:"admin_requests" json:"admin_requests"`
	// TLS and SASL are how the ambassador connects and authenticates to
	// the brokers; clients need neither.
	TLS  KafkaTLS  `yaml:"tls" json:"tls"`
	SASL KafkaSASL `yaml:"sasl" json:"sasl"`
}

// KafkaTLS is TLS from the ambassador to the Kafka brokers.
type KafkaTLS struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// CAFile verifies the brokers (default: the system roots).
	CAFile string `yaml:"ca_file" json:"ca_file"`
	// CertFile and KeyFile are a client certificate, if brokers want one.
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
	// ServerName overrides the name verified (default: the broker's host).
	ServerName         string `yaml:"server_name" json:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
}

// KafkaSASL authenticates the ambassador to the Kafka brokers.
type KafkaSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: none.
	Mechanism string `yaml:"mechanism" json:"mechanism"`
	Username  string `yaml:"username" json:"username"`
	Password  Secret `yaml:"password" json:"password"`
}

// Enabled reports whether the Kafka frontend is on.
func (k *Kafka) Enabled() bool { return len(k.BootstrapServers) > 0 }

// Default returns the configuration before any file, variable or flag.
func Default() *Config {
	return &Config{
		Admin:  Admin{Listen: "127.0.0.1:9901"},
		Log:    Log{Level: "info", Format: "text"},
		Health: Health{Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second), FailThreshold: 3, RiseThreshold: 1},
		CircuitBreaker: CircuitBreaker{
			FailureThreshold: 5,
			OpenTimeout:      Duration(10 * time.Second),
		},
		LoadBalance: "round_robin",
		Limits: Limits{
			ConnectionTimeout: Duration(5 * time.Second),
		},
		ShutdownTimeout: Duration(10 * time.Second),
		Redis: Redis{
			Listen:          "127.0.0.1:6379",
			Hash:            "xxhash64",
			Distribution:    "ketama",
			HashTag:         "{}",
			PoolSize:        1,
			RequestTimeout:  Duration(5 * time.Second),
			MaxBulkLen:      512 << 20,
			MaxMultibulkLen: 1 << 20, // Redis 7 allows up to INT_MAX; see protocols/redis/README.md
		},
		RabbitMQ: RabbitMQ{Listen: "127.0.0.1:5672"},
		Kafka: Kafka{
			Listen:          "127.0.0.1:9092",
			MetadataRefresh: Duration(30 * time.Second),
			MaxRequestSize:  100 << 20,
			FetchReadAhead:  true,
			AdminRequests:   true,
		},
	}
}

// Source names where the setting with the given key (e.g. "redis.nodes")
// came from: a variable, a flag, the file, or "default".
func (c *Config) Source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return "default"
}

func (c *Config) setSource(key, src string) {
	if c.sources == nil {
		c.sources = map[string]string{}
	}
	c.sources[key] = src
}
