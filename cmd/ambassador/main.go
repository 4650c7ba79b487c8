// Command ambassador is a protocol-aware cluster ambassador: it gives an
// application single localhost endpoints for Redis, RabbitMQ and Kafka and
// routes each key, queue or partition to the right node of the real
// backend cluster.
//
//	ambassador [run] [--config FILE] [flags]   serve
//	ambassador validate [--config FILE] [flags] print the effective configuration, or the errors
//	ambassador version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/server"
)

// version is stamped by the Makefile from git.
var version = "dev"

func main() {
	setProcs()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// setProcs runs the ambassador on half the CPUs it may use (at least
// one) unless GOMAXPROCS says otherwise. A sidecar shares its machine with
// the application and, in tests and benchmarks, with the backends and the
// load generator: measured on 2 cores, one P serves more requests per
// second with less CPU per request than two (docs/benchmarks.md), as the
// runtime then never wakes or migrates threads between Ps.
func setProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "validate" || args[0] == "version" || args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "ambassador", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	load := func() (*config.Config, error) { return config.Load(args, os.LookupEnv) }
	cfg, err := load()
	if cmd == "validate" {
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "# configuration is valid\n%s", cfg.Redacted())
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "ambassador:", err)
		if errors.Is(err, config.ErrInvalid) {
			fmt.Fprintln(stderr, "run `ambassador help` for the settings")
		}
		return 2
	}
	log := newLogger(stderr, cfg.Log)
	srv, err := server.New(cfg, server.Options{Logger: log, Version: version, Load: load})
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading configuration")
				if err := srv.Reload(); err != nil {
					log.Error("reload failed; keeping the previous configuration", "error", err)
				}
			}
		}
	}()
	log.Info("ambassador starting", "version", version, "gomaxprocs", runtime.GOMAXPROCS(0))
	if err := srv.Run(ctx); err != nil {
		log.Error("ambassador stopped", "error", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `ambassador: one localhost endpoint per protocol in front of Redis, RabbitMQ and Kafka clusters.

Usage:
  ambassador [run] [--config FILE] [flags]     serve (SIGHUP reloads node lists, SIGTERM drains and exits)
  ambassador validate [--config FILE] [flags]  print the effective configuration (secrets redacted) or the errors
  ambassador version

Settings come from, in rising precedence: defaults, the YAML file, environment variables, flags.
The README lists every file key and variable. Flags:
`)
	fmt.Fprint(w, config.FlagUsage())
}
