// Command demo (make demo) starts local backends — three redis-server
// nodes and a three-broker Kafka (franz-go's kfake, in process); with
// -rabbitmq also a RabbitMQ cluster, for the AMQP frontend of a later
// issue — and the ambassador in front of them on ports that do not clash
// with a local Redis or Kafka, prints how to connect, and stops everything
// on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/server"
)

func main() {
	redisPort := flag.Int("redis-port", 16379, "Redis endpoint port (a free one is used if taken)")
	kafkaPort := flag.Int("kafka-port", 19092, "Kafka endpoint port")
	adminPort := flag.Int("admin-port", 19901, "admin endpoint port")
	withRabbit := flag.Bool("rabbitmq", false, "also start a 3-node RabbitMQ cluster (it takes ~30 s to start; nothing uses it until the AMQP frontend of a later issue)")
	flag.Parse()
	if err := run(*redisPort, *kafkaPort, *adminPort, *withRabbit); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(redisPort, kafkaPort, adminPort int, withRabbit bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("starting 3 redis-server nodes and a 3-broker Kafka (kfake)...")
	nodes, err := harness.StartRedis(3)
	if err != nil {
		return err
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	kafka, err := harness.StartKafka(3, kfake.SeedTopics(3, "demo"), kfake.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer kafka.Close()
	var rabbit *harness.RabbitCluster
	if withRabbit {
		fmt.Println("starting a 3-node RabbitMQ cluster...")
		if rabbit, err = harness.StartRabbitCluster(3); err != nil {
			return err
		}
		defer rabbit.Close()
	}

	var redisAddrs []string
	for _, n := range nodes {
		redisAddrs = append(redisAddrs, n.Addr)
	}
	env := map[string]string{
		"REDIS_CLUSTER_NODES":     strings.Join(redisAddrs, ","),
		"REDIS_LISTEN":            freeAddr(redisPort),
		"KAFKA_BOOTSTRAP_SERVERS": strings.Join(kafka.Addrs, ","),
		"KAFKA_LISTEN":            freeAddr(kafkaPort),
		"ADMIN_LISTEN":            freeAddr(adminPort),
		"HEALTH_CHECK_INTERVAL":   "2s",
	}
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(cfg, server.Options{Logger: log, Version: "demo"})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case <-srv.Started():
	case err := <-errc:
		return err
	}
	r, k, a := cfg.Redis.Listen, cfg.Kafka.Listen, cfg.Admin.Listen
	rHost, rPort, _ := net.SplitHostPort(r)
	fmt.Printf(`
The ambassador is running. Backends:
  Redis nodes:    %s
  Kafka brokers:  %s
`, strings.Join(redisAddrs, " "), strings.Join(kafka.Addrs, " "))
	if rabbit != nil {
		fmt.Printf("  RabbitMQ nodes: %s (no AMQP frontend yet)\n", strings.Join(rabbit.Addrs(), " "))
	}
	fmt.Printf(`
Connect to ONE endpoint per protocol:
  Redis:  REDIS_URL=redis://%s
          redis-cli -h %s -p %s set hello world
          redis-cli -h %s -p %s mget hello a b c      (keys spread over the 3 nodes)
  Kafka:  bootstrap %s
          kcat -b %s -L                               (one broker: the ambassador)
          echo hi | kcat -b %s -P -t demo && kcat -b %s -C -t demo -e
  Admin:  curl http://%s/nodes    /readyz  /metrics  /config

Try stopping a Redis node: redis-cli -p %d shutdown nosave   and watch /nodes report it down.
Ctrl-C stops everything.
`, r, rHost, rPort, rHost, rPort, k, k, k, k, a, nodes[1].Port)
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping...")
	case err := <-errc:
		return err
	}
	select {
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the ambassador did not stop within 30s")
	}
}

// freeAddr returns 127.0.0.1:port, or a free port when port is taken.
func freeAddr(port int) string {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		return addr
	}
	p, err := harness.FreePort()
	if err != nil {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}
