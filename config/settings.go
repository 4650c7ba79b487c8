package config

import (
	"fmt"
	"strconv"
	"strings"
)

// setting is one configuration key that variables and flags can set. Env
// lists the variable names (aliases after the first); Flag is the flag
// name without dashes, empty when there is none.
type setting struct {
	Key  string
	Env  []string
	Flag string
	Doc  string
	Set  func(c *Config, v string) error
}

// settings is every key that a variable or a flag can set. The README's
// configuration reference is written from it (see Reference).
var settings = []setting{
	{"admin.listen", []string{"ADMIN_LISTEN"}, "admin-listen", "admin HTTP address (host:port)",
		func(c *Config, v string) error { return setAddr(&c.Admin.Listen, v) }},
	{"log.level", []string{"LOG_LEVEL"}, "log-level", "debug, info, warn or error",
		func(c *Config, v string) error { c.Log.Level = normLower(v); return nil }},
	{"log.format", []string{"LOG_FORMAT"}, "log-format", "text or json",
		func(c *Config, v string) error { c.Log.Format = normLower(v); return nil }},
	{"load_balance", []string{"LOAD_BALANCE_ALGORITHM", "ROUTING_STRATEGY"}, "load-balance", "for keyless commands: round_robin (by weight), least_connections (fewest requests in flight per unit of weight; ties by weight) or latency_based (of two random nodes, the lower latency EWMA times requests in flight, per unit of weight; a latency not measured again fades, so a node slow once is tried again)",
		func(c *Config, v string) error { c.LoadBalance = normalizePolicy(v); return nil }},
	{"region_preference", []string{"REGION_PREFERENCE"}, "region-preference", "comma-separated regions, most preferred first",
		func(c *Config, v string) error { c.RegionPreference = splitList(v); return nil }},
	{"health.interval", []string{"HEALTH_CHECK_INTERVAL"}, "health-check-interval", "time between active probes of each node (at least 100ms)",
		func(c *Config, v string) error { return setDuration(&c.Health.Interval, v) }},
	{"health.timeout", []string{"HEALTH_CHECK_TIMEOUT"}, "health-check-timeout", "timeout of one probe (unless set, at most health.interval)",
		func(c *Config, v string) error { return setDuration(&c.Health.Timeout, v) }},
	{"health.fail_threshold", []string{"HEALTH_CHECK_FAIL_THRESHOLD"}, "", "consecutive failures that mark a node down",
		func(c *Config, v string) error { return setInt(&c.Health.FailThreshold, v) }},
	{"health.rise_threshold", []string{"HEALTH_CHECK_RISE_THRESHOLD"}, "", "consecutive passing probes that bring a node back",
		func(c *Config, v string) error { return setInt(&c.Health.RiseThreshold, v) }},
	{"circuit_breaker.enabled", []string{"CIRCUIT_BREAKER_ENABLED"}, "circuit-breaker", "per-node circuit breaker on request failures",
		func(c *Config, v string) error { return setBool(&c.CircuitBreaker.Enabled, v) }},
	{"circuit_breaker.failure_threshold", []string{"CIRCUIT_BREAKER_FAILURE_THRESHOLD"}, "", "consecutive request failures that open a breaker",
		func(c *Config, v string) error { return setInt(&c.CircuitBreaker.FailureThreshold, v) }},
	{"circuit_breaker.open_timeout", []string{"CIRCUIT_BREAKER_OPEN_TIMEOUT"}, "", "how long a breaker stays open before a trial request",
		func(c *Config, v string) error { return setDuration(&c.CircuitBreaker.OpenTimeout, v) }},
	{"limits.max_connections", []string{"MAX_CONNECTIONS"}, "max-connections", "client connections per frontend (0 = no limit)",
		func(c *Config, v string) error { return setInt(&c.Limits.MaxConnections, v) }},
	{"limits.connection_timeout", []string{"CONNECTION_TIMEOUT"}, "connection-timeout", "timeout to connect to a backend node",
		func(c *Config, v string) error { return setDuration(&c.Limits.ConnectionTimeout, v) }},
	{"limits.idle_timeout", []string{"IDLE_TIMEOUT"}, "idle-timeout", "close clients that send nothing this long after their last reply, with none pending (0 = never); Redis subscribers and blocked clients are not idle",
		func(c *Config, v string) error { return setDuration(&c.Limits.IdleTimeout, v) }},
	{"config_reload_interval", []string{"CONFIG_RELOAD_INTERVAL"}, "config-reload-interval", "poll the config file and reload on change (0 = only on SIGHUP; else at least 50ms, and a config file is needed)",
		func(c *Config, v string) error { return setDuration(&c.ConfigReloadInterval, v) }},
	{"shutdown_timeout", []string{"SHUTDOWN_TIMEOUT"}, "shutdown-timeout", "how long SIGTERM waits for connections to drain",
		func(c *Config, v string) error { return setDuration(&c.ShutdownTimeout, v) }},

	{"redis.listen", []string{"REDIS_LISTEN"}, "redis-listen", "Redis frontend address",
		func(c *Config, v string) error { return setAddr(&c.Redis.Listen, v) }},
	{"redis.nodes", []string{"REDIS_CLUSTER_NODES", "REDIS_BACKENDS"}, "redis-nodes", "Redis backend nodes, host:port[:weight][@region][ name], comma-separated; sets the frontend on",
		func(c *Config, v string) error { return setNodes(&c.Redis.Nodes, v) }},
	{"redis.cluster_mode", []string{"CLUSTER_MODE"}, "redis-cluster-mode", "enabled when the backends form a Redis Cluster (not supported yet: refused)",
		func(c *Config, v string) error { return setBool(&c.Redis.ClusterMode, v) }},
	{"redis.hash", []string{"REDIS_HASH"}, "redis-hash", "key hash: xxhash64, or a twemproxy hash (fnv1a_64, md5, crc32a, murmur, ...)",
		func(c *Config, v string) error { c.Redis.Hash = normLower(v); return nil }},
	{"redis.distribution", []string{"REDIS_DISTRIBUTION"}, "redis-distribution", "ketama or modula",
		func(c *Config, v string) error { c.Redis.Distribution = normLower(v); return nil }},
	{"redis.distribution", []string{"CONSISTENT_HASHING"}, "", "the classic specs' switch: false sets the distribution modula, true ketama (with `REDIS_DISTRIBUTION` too, they must agree)",
		func(c *Config, v string) error {
			var on bool
			if err := setBool(&on, v); err != nil {
				return err
			}
			if on {
				c.Redis.Distribution = "ketama"
			} else {
				c.Redis.Distribution = "modula"
			}
			return nil
		}},
	{"redis.hash_tag", []string{"REDIS_HASH_TAG"}, "redis-hash-tag", "two characters, e.g. {}; only the part inside is hashed (\"none\" disables)",
		func(c *Config, v string) error { c.Redis.HashTag = normHashTag(v); return nil }},
	{"redis.auto_eject", []string{"REDIS_AUTO_EJECT"}, "redis-auto-eject", "rehash a down node's keys onto the other nodes",
		func(c *Config, v string) error { return setBool(&c.Redis.AutoEject, v) }},
	{"redis.username", []string{"REDIS_USERNAME"}, "", "username the ambassador sends to the backends",
		func(c *Config, v string) error { c.Redis.Username = v; return nil }},
	{"redis.password", []string{"REDIS_PASSWORD"}, "", "password the ambassador sends to the backends",
		func(c *Config, v string) error { c.Redis.Password = Secret(v); return nil }},
	{"redis.frontend_password", []string{"REDIS_FRONTEND_PASSWORD"}, "", "password clients must send (AUTH) to the ambassador",
		func(c *Config, v string) error { c.Redis.FrontendPassword = Secret(v); return nil }},
	{"redis.pool_size", []string{"REDIS_POOL_SIZE"}, "", "multiplexed connections per backend node (and RESP version), like twemproxy's server_connections; 1 to 256",
		func(c *Config, v string) error { return setInt(&c.Redis.PoolSize, v) }},
	{"redis.request_timeout", []string{"REDIS_REQUEST_TIMEOUT"}, "", "how long a request waits for its backend reply",
		func(c *Config, v string) error { return setDuration(&c.Redis.RequestTimeout, v) }},

	{"rabbitmq.listen", []string{"RABBITMQ_LISTEN"}, "rabbitmq-listen", "AMQP frontend address (the RabbitMQ frontend is not supported yet)",
		func(c *Config, v string) error { return setAddr(&c.RabbitMQ.Listen, v) }},
	{"rabbitmq.nodes", []string{"RABBITMQ_CLUSTER_NODES", "RABBITMQ_BACKENDS"}, "rabbitmq-nodes", "RabbitMQ nodes, host:port[:weight][@region], comma-separated (not supported yet: refused)",
		func(c *Config, v string) error { return setNodes(&c.RabbitMQ.Nodes, v) }},
	{"rabbitmq.connection_pooling", []string{"RABBITMQ_CONNECTION_POOLING"}, "", "pool upstream AMQP connections (not supported yet: refused)",
		func(c *Config, v string) error { return setBool(&c.RabbitMQ.ConnectionPooling, v) }},

	{"kafka.listen", []string{"KAFKA_LISTEN"}, "kafka-listen", "Kafka frontend address",
		func(c *Config, v string) error { return setAddr(&c.Kafka.Listen, v) }},
	{"kafka.advertised_addr", []string{"KAFKA_ADVERTISED_ADDR"}, "kafka-advertised-addr", "host:port clients are told to connect to (default: kafka.listen)",
		func(c *Config, v string) error { return setAddr(&c.Kafka.AdvertisedAddr, v) }},
	{"kafka.bootstrap_servers", []string{"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BACKENDS"}, "kafka-bootstrap-servers", "Kafka bootstrap brokers, host:port, comma-separated (no weight, region or name); sets the frontend on",
		func(c *Config, v string) error { return setNodes(&c.Kafka.BootstrapServers, v) }},
	{"kafka.metadata_refresh", []string{"KAFKA_METADATA_REFRESH"}, "", "how often backend metadata is refreshed (at least 1s)",
		func(c *Config, v string) error { return setDuration(&c.Kafka.MetadataRefresh, v) }},
	{"kafka.fetch_read_ahead", []string{"KAFKA_FETCH_READ_AHEAD"}, "", "fetch a partition's next records while the client processes the last ones",
		func(c *Config, v string) error { return setBool(&c.Kafka.FetchReadAhead, v) }},
	{"kafka.admin_requests", []string{"KAFKA_ADMIN_REQUESTS"}, "", "forward requests that change the cluster or its security (topics, configs, ACLs, SCRAM users, quotas...); false refuses them (clients act with the ambassador's backend identity)",
		func(c *Config, v string) error { return setBool(&c.Kafka.AdminRequests, v) }},
	{"kafka.tls.enabled", []string{"KAFKA_TLS"}, "", "TLS to the Kafka brokers; the other kafka.tls settings need it",
		func(c *Config, v string) error { return setBool(&c.Kafka.TLS.Enabled, v) }},
	{"kafka.tls.ca_file", []string{"KAFKA_TLS_CA_FILE"}, "", "CA bundle that verifies the Kafka brokers (default: system roots)",
		func(c *Config, v string) error { c.Kafka.TLS.CAFile = v; return nil }},
	{"kafka.tls.cert_file", []string{"KAFKA_TLS_CERT_FILE"}, "", "client certificate for the Kafka brokers",
		func(c *Config, v string) error { c.Kafka.TLS.CertFile = v; return nil }},
	{"kafka.tls.key_file", []string{"KAFKA_TLS_KEY_FILE"}, "", "key of the client certificate for the Kafka brokers",
		func(c *Config, v string) error { c.Kafka.TLS.KeyFile = v; return nil }},
	{"kafka.tls.server_name", []string{"KAFKA_TLS_SERVER_NAME"}, "", "name verified in the brokers' certificates (default: their host)",
		func(c *Config, v string) error { c.Kafka.TLS.ServerName = v; return nil }},
	{"kafka.tls.insecure_skip_verify", []string{"KAFKA_TLS_INSECURE_SKIP_VERIFY"}, "", "do not verify the Kafka brokers' certificates",
		func(c *Config, v string) error { return setBool(&c.Kafka.TLS.InsecureSkipVerify, v) }},
	{"kafka.sasl.mechanism", []string{"KAFKA_SASL_MECHANISM"}, "", "SASL to the Kafka brokers: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case); needs a username and a password",
		func(c *Config, v string) error { c.Kafka.SASL.Mechanism = normMechanism(v); return nil }},
	{"kafka.sasl.username", []string{"KAFKA_SASL_USERNAME"}, "", "SASL user of the ambassador at the Kafka brokers",
		func(c *Config, v string) error { c.Kafka.SASL.Username = v; return nil }},
	{"kafka.sasl.password", []string{"KAFKA_SASL_PASSWORD"}, "", "SASL password of the ambassador at the Kafka brokers",
		func(c *Config, v string) error { c.Kafka.SASL.Password = Secret(v); return nil }},
}

// laterSettings are variables of the classic sidecar specs that a later
// issue wires. Setting one to anything but an empty or false value is
// refused, so that no setting is silently ignored.
var laterSettings = map[string]string{
	"TLS_ENABLED":         "TLS",
	"TLS_CERT_FILE":       "TLS",
	"TLS_KEY_FILE":        "TLS",
	"TLS_CA_FILE":         "TLS",
	"REDIS_TLS":           "TLS to Redis",
	"RABBITMQ_TLS":        "TLS to RabbitMQ",
	"RABBITMQ_USERNAME":   "RabbitMQ credentials",
	"RABBITMQ_PASSWORD":   "RabbitMQ credentials",
	"REDIS_READ_FROM":     "Redis Cluster replica reads",
	"REDIS_READ_REPLICAS": "Redis Cluster replica reads",
	"AUTH_ENABLED":        "frontend authentication",
}

func normalizePolicy(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	v = strings.ReplaceAll(v, "-", "_")
	switch v {
	case "roundrobin", "rr":
		return "round_robin"
	case "leastconnections", "least_conn", "least_connection", "leastconn":
		return "least_connections"
	case "latency", "latencybased", "least_latency", "ewma":
		return "latency_based"
	}
	return v
}

// normLower is an enumerated value (log level, hash...) as compared.
func normLower(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// normHashTag is a hash tag as compared: "none" is no tag.
func normHashTag(v string) string {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "none") {
		return ""
	}
	return v
}

// normMechanism is a SASL mechanism as the Kafka frontend compares it.
func normMechanism(v string) string { return strings.ToUpper(strings.TrimSpace(v)) }

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func setAddr(dst *string, v string) error {
	v = strings.TrimSpace(v)
	if err := CheckAddr(v); err != nil {
		return err
	}
	*dst = v
	return nil
}

func setNodes(dst *[]Node, v string) error {
	n, err := ParseNodes(v)
	if err != nil {
		return err
	}
	*dst = n
	return nil
}

func setDuration(dst *Duration, v string) error {
	d, err := ParseDuration(v)
	if err != nil {
		return err
	}
	*dst = d
	return nil
}

func setInt(dst *int, v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not an integer", v)
	}
	*dst = n
	return nil
}

// ParseBool accepts the spellings pod specs use: true/false, 1/0, yes/no,
// on/off, enabled/disabled.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on", "enable", "enabled":
		return true, nil
	case "0", "f", "false", "no", "n", "off", "disable", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want true/false, enabled/disabled)", v)
}

func setBool(dst *bool, v string) error {
	b, err := ParseBool(v)
	if err != nil {
		return err
	}
	*dst = b
	return nil
}
