// Package harness starts real backends for tests, demos and benchmarks:
// standalone redis-server nodes, a six-node Redis Cluster, a RabbitMQ
// cluster of real rabbitmq-server nodes, an in-process Kafka cluster from
// franz-go's kfake, and nutcracker (twemproxy) for side-by-side comparisons.
//
// Every backend has two forms. StartX returns the backend and an error and
// leaves teardown to the caller (Close or Stop), for TestMain and for the
// demo program. NewX (or RedisNodes) takes a testing.TB, registers the
// teardown with t.Cleanup and calls t.Fatal on error, for single tests.
//
// Everything listens on free 127.0.0.1 ports and lives in its own temporary
// directory, with its own node names (RabbitMQ nodes get a private Erlang
// cookie too), so the system services that may run on the default ports
// (redis on 6379, rabbit@localhost on 5672) are never touched. Child
// processes run in their own process group, which teardown kills, and get
// SIGKILL from the kernel if the process that started them dies, so nothing
// outlives the test binary. Each process writes its log into its directory;
// start errors carry the tail of that log.
//
// A missing server binary is an error (ErrNotInstalled) whose message holds
// the command that installs every backend; tests never skip for it.
package harness
