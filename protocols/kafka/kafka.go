package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/protocols/frontend"
)

// AmbassadorNodeID is the broker id clients see for the ambassador: the
// only broker, the controller, every coordinator and every partition's
// leader. It is chosen far from the ids brokers usually take, so that a
// backend id never looks like it leaked.
const AmbassadorNodeID int32 = 1_000_000

// Deps are what the frontend receives from the server.
type Deps struct {
	Logger          *slog.Logger
	Registry        prometheus.Registerer
	FrontendMetrics *frontend.Metrics
}

// settings are the reloadable settings, swapped whole.
type settings struct {
	listen      string
	advertised  string // configured; "" = listen
	host        string // advertised host and port in effect
	port        int32
	maxRequest  int32
	idle        time.Duration
	dialTimeout time.Duration
	refresh     time.Duration
	seeds       []string
	readAhead   bool
	admin       bool // admin and security requests forwarded
}

// Frontend is the Kafka frontend: a server.Frontend with Ready and Reload.
type Frontend struct {
	log *slog.Logger
	cl  *cluster.Cluster
	m   *metrics
	srv *frontend.Server
	be  *backend
	sec *security // TLS and SASL to the brokers; a change needs a restart
	kcf config.Kafka

	st atomic.Pointer[settings]

	budget readBudget // bytes of large request frames being read

	mu      sync.Mutex
	started bool
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// New builds the Kafka frontend over cl, whose nodes are the bootstrap
// servers until the first metadata names the brokers. Nothing runs until
// Serve.
func New(cfg *config.Config, cl *cluster.Cluster, d Deps) (*Frontend, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	f := &Frontend{
		log: d.Logger.With("component", "kafka", "cluster", "kafka"),
		cl:  cl,
		m:   newMetrics(d.Registry),
	}
	st, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	f.st.Store(st)
	if f.sec, err = newSecurity(&cfg.Kafka); err != nil {
		return nil, err
	}
	f.kcf = cfg.Kafka
	f.be = newBackend(f)
	f.srv = frontend.NewServer(frontend.Options{
		Name:           "kafka",
		MaxConnections: cfg.Limits.MaxConnections,
		Logger:         d.Logger,
		Metrics:        d.FrontendMetrics,
	}, f.serveConn)
	return f, nil
}

func newSettings(cfg *config.Config) (*settings, error) {
	k := &cfg.Kafka
	st := &settings{
		listen:      k.Listen,
		advertised:  k.AdvertisedAddr,
		maxRequest:  k.MaxRequestSize,
		idle:        cfg.Limits.IdleTimeout.D(),
		dialTimeout: cfg.Limits.ConnectionTimeout.D(),
		refresh:     k.MetadataRefresh.D(),
		readAhead:   k.FetchReadAhead,
		admin:       k.AdminRequests,
	}
	if st.maxRequest <= 0 {
		st.maxRequest = 100 << 20
	}
	if st.dialTimeout <= 0 {
		st.dialTimeout = 5 * time.Second
	}
	if st.refresh <= 0 {
		st.refresh = 30 * time.Second
	}
	for _, n := range k.BootstrapServers {
		st.seeds = append(st.seeds, n.Addr)
	}
	if len(st.seeds) == 0 {
		return nil, errors.New("kafka: no bootstrap servers")
	}
	addr := st.advertised
	if addr == "" {
		addr = st.listen
	}
	if err := st.setAdvertised(addr, nil); err != nil {
		return nil, err
	}
	return st, nil
}

// setAdvertised sets the host and port clients are told; a port 0 or an
// unspecified host takes the listener's.
func (st *settings) setAdvertised(addr string, bound net.Addr) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("kafka: advertised address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("kafka: advertised address %q: bad port", addr)
	}
	if ta, ok := bound.(*net.TCPAddr); ok {
		if p == 0 {
			p = ta.Port
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
			if !ta.IP.IsUnspecified() {
				host = ta.IP.String()
			}
		}
	}
	st.host, st.port = host, int32(p)
	return nil
}

func (f *Frontend) settings() *settings { return f.st.Load() }

// Serve starts the backend metadata loop and accepts clients on ln until
// Shutdown.
func (f *Frontend) Serve(ln net.Listener) error {
	st := *f.settings()
	if st.port == 0 || st.host == "" || net.ParseIP(st.host) != nil && net.ParseIP(st.host).IsUnspecified() {
		addr := st.advertised
		if addr == "" {
			addr = st.listen
		}
		if err := st.setAdvertised(addr, ln.Addr()); err != nil {
			return err
		}
		f.st.Store(&st)
	}
	if err := f.be.start(st.seeds, st.dialTimeout, st.refresh, f.sec); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.mu.Lock()
	f.started, f.stop = true, cancel
	f.mu.Unlock()
	f.wg.Go(func() { f.be.run(ctx) })
	f.log.Info("kafka frontend serving", "addr", ln.Addr().String(), "advertised", net.JoinHostPort(st.host, strconv.Itoa(int(st.port))), "bootstrap", st.seeds, "backend_security", f.sec.desc)
	return f.srv.Serve(ln)
}

// Shutdown stops accepting, drains the clients until ctx ends, then stops
// the backend loop.
func (f *Frontend) Shutdown(ctx context.Context) error {
	err := f.srv.Shutdown(ctx)
	f.mu.Lock()
	stop := f.stop
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	f.wg.Wait()
	f.be.close()
	return err
}

// stopping reports whether a shutdown has begun.
func (f *Frontend) stopping() bool { return f.srv.IsDraining() }

// Ready reports an error until backend metadata has loaded and a broker
// has told its API versions.
func (f *Frontend) Ready() error {
	if !f.be.loaded.Load() {
		if err := f.be.lastErr.Load(); err != nil {
			return fmt.Errorf("%w: %v", ErrNoMetadata, *err) // why: wrong credentials, no broker reachable...
		}
		return ErrNoMetadata
	}
	if f.be.versions.Load() == nil {
		return ErrNoVersions
	}
	return nil
}

// Reload takes new bootstrap servers, advertised address, limits and
// refresh interval without dropping clients. The node set stays the
// discovered brokers.
func (f *Frontend) Reload(cfg *config.Config) error {
	st, err := f.checkReload(cfg)
	if err != nil {
		return err
	}
	old := f.settings()
	if st.port == 0 || st.host == "" || net.ParseIP(st.host) != nil && net.ParseIP(st.host).IsUnspecified() {
		// as at Serve: the bound listener's port and address
		if bound := f.srv.Addr(); bound != nil {
			addr := st.advertised
			if addr == "" {
				addr = st.listen
			}
			if err := st.setAdvertised(addr, bound); err != nil {
				return err
			}
		} else {
			st.host, st.port = old.host, old.port
		}
	}
	if f.be.kcl != nil {
		if err := f.be.kcl.UpdateSeedBrokers(st.seeds...); err != nil {
			return fmt.Errorf("kafka: bootstrap servers: %w", err)
		}
	}
	f.st.Store(st)
	f.be.triggerRefresh()
	return nil
}

// CheckReload refuses what Reload cannot apply (a new listen address, TLS
// or SASL settings), before the server applies anything of a reload.
func (f *Frontend) CheckReload(cfg *config.Config) error {
	_, err := f.checkReload(cfg)
	return err
}

func (f *Frontend) checkReload(cfg *config.Config) (*settings, error) {
	st, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	if st.listen != f.settings().listen {
		return nil, fmt.Errorf("kafka.listen changed; restart to apply it")
	}
	if !sameSecurity(&f.kcf, &cfg.Kafka) {
		return nil, fmt.Errorf("kafka.tls or kafka.sasl changed; restart to apply it")
	}
	return st, nil
}

// Addr is the address the frontend listens on, once serving.
func (f *Frontend) Addr() net.Addr { return f.srv.Addr() }

// Advertised is the host:port clients are told to connect to.
func (f *Frontend) Advertised() string {
	st := f.settings()
	return net.JoinHostPort(st.host, strconv.Itoa(int(st.port)))
}
