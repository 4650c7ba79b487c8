package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/hashring"
	"github.com/ambassador-proxy/ambassador/health"
	"github.com/ambassador-proxy/ambassador/protocols/frontend"
)

// Protocol builds one kind of frontend. The server calls Build for each
// protocol whose Enabled returns true.
type Protocol struct {
	Name    string
	Enabled func(c *config.Config) bool
	Listen  func(c *config.Config) string
	Nodes   func(c *config.Config) []config.Node
	// Ring and AutoEject configure the cluster's hash ring (optional).
	Ring      func(c *config.Config) hashring.Config
	AutoEject func(c *config.Config) bool
	// Probe is the cluster's health probe (default a TCP connect); cur
	// is the configuration in effect at each probe (reloads change it).
	Probe func(cur func() *config.Config) health.ProbeFunc
	// Build returns the frontend serving clients over cl.
	Build func(c *config.Config, cl *cluster.Cluster, d Deps) (Frontend, error)
}

// Deps are what a frontend receives from the server.
type Deps struct {
	Logger          *slog.Logger
	Registry        prometheus.Registerer
	FrontendMetrics *frontend.Metrics
}

// Options configure a Server.
type Options struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // default: a new one
	Version  string
	// Load re-reads the configuration sources on reload (SIGHUP, or the
	// file changing). Without it Reload fails.
	Load func() (*config.Config, error)
	// Protocols are the frontends this server can build; default
	// DefaultProtocols().
	Protocols []Protocol
}

// Server is one ambassador process's frontends, clusters and admin
// endpoint.
type Server struct {
	opts   Options
	log    *slog.Logger
	reg    *prometheus.Registry
	cfg    atomic.Pointer[config.Config]
	fronts []*frontendEntry

	healthMetrics *health.Metrics
	collector     *cluster.Collector
	feMetrics     *frontend.Metrics
	reloads       *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge

	reloadMu sync.Mutex
	admin    *http.Server
	adminLn  net.Listener
	started  chan struct{}
	running  atomic.Bool
	stopping atomic.Bool // shutdown began: not ready
	// fileBase is the config file's content when New ran: the watcher
	// compares against it, so a change made before Run is not missed.
	fileBase []byte
}

// New builds the frontends and clusters of cfg; nothing listens until Run.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Protocols == nil {
		opts.Protocols = DefaultProtocols()
	}
	reg := opts.Registry
	s := &Server{
		opts:          opts,
		log:           opts.Logger,
		reg:           reg,
		healthMetrics: health.NewMetrics(reg),
		collector:     cluster.NewCollector(reg),
		feMetrics:     frontend.NewMetrics(reg),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ambassador_config_reloads_total",
			Help: "Configuration reloads, by result.",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ambassador_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it failed.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ambassador_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
		started: make(chan struct{}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ambassador_build_info",
		Help: "The ambassador's version.",
	}, []string{"version"})
	build.WithLabelValues(opts.Version).Set(1)
	reg.MustRegister(s.reloads, s.reloadOK, s.reloadTime, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.reloadOK.Set(1)
	s.reloadTime.SetToCurrentTime()
	s.cfg.Store(cfg)
	if cfg.File != "" {
		s.fileBase, _ = os.ReadFile(cfg.File)
	}

	deps := Deps{Logger: opts.Logger, Registry: reg, FrontendMetrics: s.feMetrics}
	for _, p := range opts.Protocols {
		if !p.Enabled(cfg) {
			continue
		}
		if p.Build == nil {
			return nil, fmt.Errorf("%s: the %s frontend is not supported yet", p.Name, p.Name)
		}
		cl, err := cluster.New(clusterSpecs(p.Nodes(cfg)), clusterOptions(cfg, s.cfg.Load, p, opts.Logger, s.healthMetrics))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		s.collector.Add(cl)
		fe, err := p.Build(cfg, cl, deps)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		s.fronts = append(s.fronts, &frontendEntry{name: p.Name, listen: p.Listen(cfg), fe: fe, clusters: []*cluster.Cluster{cl}})
	}
	if len(s.fronts) == 0 {
		return nil, errors.New("server: no frontend is enabled")
	}
	return s, nil
}

func clusterSpecs(nodes []config.Node) []cluster.NodeSpec {
	out := make([]cluster.NodeSpec, len(nodes))
	for i, n := range nodes {
		out[i] = cluster.NodeSpec{Addr: n.Addr, Weight: n.Weight, Region: n.Region, Name: n.Name}
	}
	return out
}

func clusterOptions(cfg *config.Config, cur func() *config.Config, p Protocol, log *slog.Logger, hm *health.Metrics) cluster.Options {
	o := cluster.Options{
		Name:             p.Name,
		Policy:           cfg.LoadBalance,
		RegionPreference: cfg.RegionPreference,
		Breaker: cluster.BreakerOptions{
			Enabled:          cfg.CircuitBreaker.Enabled,
			FailureThreshold: cfg.CircuitBreaker.FailureThreshold,
			OpenTimeout:      cfg.CircuitBreaker.OpenTimeout.D(),
		},
		Health: health.Options{
			Interval:      cfg.Health.Interval.D(),
			Timeout:       cfg.Health.Timeout.D(),
			FailThreshold: cfg.Health.FailThreshold,
			RiseThreshold: cfg.Health.RiseThreshold,
			Metrics:       hm,
		},
		Logger: log,
	}
	if p.Ring != nil {
		o.Ring = p.Ring(cfg)
	}
	if p.AutoEject != nil {
		o.AutoEject = p.AutoEject(cfg)
	}
	if p.Probe != nil {
		o.Health.Probe = p.Probe(cur)
	}
	return o
}

// Config returns the configuration in effect.
func (s *Server) Config() *config.Config { return s.cfg.Load() }

// Registry is the server's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Started is closed once every listener is open.
func (s *Server) Started() <-chan struct{} { return s.started }

// Addr returns the address a frontend ("redis", "kafka", ...) or "admin"
// listens on, once started; nil otherwise.
func (s *Server) Addr(name string) net.Addr {
	select {
	case <-s.started:
	default:
		return nil
	}
	if name == "admin" {
		return s.adminLn.Addr()
	}
	for _, f := range s.fronts {
		if f.name == name {
			return f.ln.Addr()
		}
	}
	return nil
}

// Clusters returns every backend cluster.
func (s *Server) Clusters() []*cluster.Cluster {
	var out []*cluster.Cluster
	for _, f := range s.fronts {
		out = append(out, f.clusters...)
	}
	return out
}

// Run opens the listeners, probes the backends and serves until ctx ends;
// then it stops accepting, drains connections for at most
// shutdown_timeout and returns. A listener that cannot open is an error
// naming its setting.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("server: Run called twice")
	}
	cfg := s.cfg.Load()
	var lc net.ListenConfig
	adminLn, err := lc.Listen(ctx, "tcp", cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
	}
	s.adminLn = adminLn
	for _, f := range s.fronts {
		ln, err := lc.Listen(ctx, "tcp", f.listen)
		if err != nil {
			adminLn.Close()
			for _, g := range s.fronts {
				if g.ln != nil {
					g.ln.Close()
				}
			}
			return fmt.Errorf("%s.listen %s: %w", f.name, f.listen, err)
		}
		f.ln = ln
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	var wg sync.WaitGroup
	errc := make(chan error, len(s.fronts)+1)

	for _, cl := range s.Clusters() {
		wg.Go(func() { _ = cl.Run(runCtx) })
	}
	wg.Go(func() { s.returnMemory(runCtx, 10*time.Second, 32<<20) })
	s.admin = &http.Server{Handler: s.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	wg.Go(func() {
		if err := s.admin.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin: %w", err)
		}
	})
	for _, f := range s.fronts {
		wg.Go(func() {
			if err := f.fe.Serve(f.ln); err != nil {
				errc <- fmt.Errorf("%s: %w", f.name, err)
			}
		})
		s.log.Info("frontend listening", "frontend", f.name, "addr", f.ln.Addr().String())
	}
	s.log.Info("admin listening", "addr", adminLn.Addr().String())
	if cfg.ConfigReloadInterval > 0 && cfg.File != "" {
		wg.Go(func() { s.watchFile(runCtx, cfg.File, cfg.ConfigReloadInterval.D()) })
	}
	close(s.started)

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "drain_timeout", cfg.ShutdownTimeout.String())
	case runErr = <-errc:
		s.log.Error("stopping after a fatal error", "error", runErr)
	}
	s.stopping.Store(true)
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.Load().ShutdownTimeout.D())
	defer cancel()
	var fwg sync.WaitGroup
	for _, f := range s.fronts {
		fwg.Go(func() {
			if err := f.fe.Shutdown(drainCtx); err != nil {
				s.log.Warn("frontend shutdown", "frontend", f.name, "error", err)
			}
		})
	}
	fwg.Wait()
	_ = s.admin.Shutdown(drainCtx)
	stopRun()
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

// watchFile reloads when the config file's content changes.
func (s *Server) watchFile(ctx context.Context, file string, every time.Duration) {
	last := s.fileBase
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(file)
		if err != nil || slices.Equal(data, last) {
			continue
		}
		last = data
		s.log.Info("config file changed; reloading", "file", file)
		if err := s.Reload(); err != nil {
			s.log.Error("reload failed; keeping the previous configuration", "error", err)
		}
	}
}

// Reload re-reads the configuration and applies the new node lists
// without dropping client connections. Settings that need a restart
// (listen addresses, frontends turned on or off, hash settings) make the
// reload fail, and the old configuration stays in force.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	err := s.reload()
	if err != nil {
		s.reloads.WithLabelValues("failure").Inc()
		s.reloadOK.Set(0)
		return err
	}
	s.reloads.WithLabelValues("success").Inc()
	s.reloadOK.Set(1)
	s.reloadTime.SetToCurrentTime()
	s.log.Info("configuration reloaded")
	return nil
}

func (s *Server) reload() error {
	if s.opts.Load == nil {
		return errors.New("reload: no configuration source")
	}
	next, err := s.opts.Load()
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	cur := s.cfg.Load()
	if msg := restartNeeded(cur, next, s.opts.Protocols); msg != "" {
		return fmt.Errorf("reload: %s changed; restart to apply it", msg)
	}
	// Check every cluster's new node set builds, and that no frontend
	// refuses the rest, before changing any.
	for _, f := range s.fronts {
		p := s.protocol(f.name)
		if _, err := cluster.New(clusterSpecs(p.Nodes(next)), clusterOptions(next, func() *config.Config { return next }, p, slog.New(slog.DiscardHandler), nil)); err != nil {
			return fmt.Errorf("reload: %s: %w", f.name, err)
		}
		if rc, ok := f.fe.(ReloadChecker); ok {
			if err := rc.CheckReload(next); err != nil {
				return fmt.Errorf("reload: %s: %w", f.name, err)
			}
		}
	}
	for _, f := range s.fronts {
		if r, ok := f.fe.(Reloader); ok {
			if err := r.Reload(next); err != nil {
				return fmt.Errorf("reload: %s: %w", f.name, err)
			}
			continue
		}
		p := s.protocol(f.name)
		for _, cl := range f.clusters {
			if err := cl.Update(clusterSpecs(p.Nodes(next))); err != nil {
				return fmt.Errorf("reload: %s: %w", f.name, err)
			}
		}
	}
	s.cfg.Store(next)
	return nil
}

func (s *Server) protocol(name string) Protocol {
	for _, p := range s.opts.Protocols {
		if p.Name == name {
			return p
		}
	}
	panic("server: unknown protocol " + name)
}

// restartNeeded names the first setting that differs and cannot change
// while running.
func restartNeeded(cur, next *config.Config, protos []Protocol) string {
	if cur.Admin.Listen != next.Admin.Listen {
		return "admin.listen"
	}
	for _, p := range protos {
		if p.Enabled(cur) != p.Enabled(next) {
			return p.Name + " frontend on/off"
		}
		if !p.Enabled(cur) {
			continue
		}
		if p.Listen(cur) != p.Listen(next) {
			return p.Name + ".listen"
		}
		if p.Ring != nil && p.Ring(cur) != p.Ring(next) {
			return p.Name + " hash settings"
		}
		if p.AutoEject != nil && p.AutoEject(cur) != p.AutoEject(next) {
			return p.Name + ".auto_eject"
		}
	}
	if cur.LoadBalance != next.LoadBalance || !slices.Equal(cur.RegionPreference, next.RegionPreference) ||
		cur.CircuitBreaker != next.CircuitBreaker || cur.Health != next.Health {
		return "load_balance, region_preference, circuit_breaker or health"
	}
	// Built into the frontends, the logger and the file watcher at start.
	if cur.Limits != next.Limits || cur.Log != next.Log || cur.ConfigReloadInterval != next.ConfigReloadInterval {
		return "limits, log or config_reload_interval"
	}
	return ""
}
