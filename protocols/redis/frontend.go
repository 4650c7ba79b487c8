package redis

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/health"
	"github.com/ambassador-proxy/ambassador/protocols/frontend"
	"github.com/ambassador-proxy/ambassador/protocols/redis/resp"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	errEOF       = io.EOF
	errConnReset = syscall.ECONNRESET
)

// Options configure a Frontend.
type Options struct {
	Config          *config.Config
	Cluster         *cluster.Cluster
	Logger          *slog.Logger
	Registry        prometheus.Registerer
	FrontendMetrics *frontend.Metrics
}

// Frontend is the Redis frontend: one localhost Redis in front of the
// standalone nodes of a cluster, keys placed by its hash ring.
type Frontend struct {
	conf    atomic.Pointer[config.Redis]
	limits  config.Limits
	cl      *cluster.Cluster
	log     *slog.Logger
	srv     *frontend.Server
	metrics *metrics
	nextID  atomic.Uint64
	version atomic.Pointer[string]

	bg sync.WaitGroup

	subMu       sync.Mutex
	subscribers map[*pubsub]struct{} // clients with subscription state, for resync
	resyncKick  chan struct{}
	resyncAgain atomic.Bool // a node refused a move: the next tick tries again
}

// New builds the frontend over cl.
func New(opts Options) (*Frontend, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	f := &Frontend{
		limits:  opts.Config.Limits,
		cl:      opts.Cluster,
		log:     opts.Logger.With("component", "redis"),
		metrics: newMetrics(),

		subscribers: map[*pubsub]struct{}{},
		resyncKick:  make(chan struct{}, 1),
	}
	rc := opts.Config.Redis
	f.conf.Store(&rc)
	f.metrics.register(opts.Registry, f)
	f.srv = frontend.NewServer(frontend.Options{
		Name:           "redis",
		MaxConnections: opts.Config.Limits.MaxConnections,
		Reject: func(conn net.Conn) {
			_, _ = conn.Write([]byte("-ERR max number of clients reached\r\n"))
		},
		Logger:  opts.Logger,
		Metrics: opts.FrontendMetrics,
		// past the drain deadline, requests still waiting for a node
		// fail at once instead of waiting out the request timeout
		OnForce: f.closePools,
	}, f.handle)
	f.cl.OnUpdate(func(_, removed []*cluster.Node) {
		for _, n := range removed {
			if p, ok := n.Data().(*nodePool); ok {
				p.close()
			}
		}
		f.kickResync()
	})
	return f, nil
}

// Probe is the Redis health probe: a PING (after AUTH when configured).
func Probe(c *config.Config) health.ProbeFunc {
	return ProbeCurrent(func() *config.Config { return c })
}

// ProbeCurrent is Probe with the credentials of the configuration in
// effect at each probe: a reloaded password is the probes' too.
func ProbeCurrent(cur func() *config.Config) health.ProbeFunc {
	return func(ctx context.Context, addr string) error {
		c := cur()
		user, pw := c.Redis.Username, c.Redis.Password.Reveal()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		var cmd []byte
		if pw != "" {
			if user == "" {
				user = "default"
			}
			cmd = resp.AppendCommandStrings(cmd, "AUTH", user, pw)
			reply, err := roundTrip(conn, cmd)
			if err != nil {
				return err
			}
			if resp.IsError(reply) {
				return fmt.Errorf("AUTH: %s", resp.ErrorText(reply))
			}
		}
		reply, err := roundTrip(conn, resp.AppendCommandStrings(nil, "PING"))
		if err != nil {
			return err
		}
		if resp.IsError(reply) {
			msg := resp.ErrorText(reply)
			if strings.HasPrefix(msg, "BUSY") {
				// A node running a long script is up: its clients get
				// -BUSY from it, as directly, and SCRIPT KILL / FUNCTION
				// KILL must reach it. Marked down, its keys failed with
				// "unavailable" until the next probes after the script
				// (with auto-eject, moved to other nodes meanwhile), and
				// the script could not be killed through the ambassador.
				return nil
			}
			// A loading node answers but cannot serve.
			return fmt.Errorf("PING: %s", msg)
		}
		// A Redis Cluster node answers, but not for the ring's keys (the
		// client connections refuse it too: see errClusterNode).
		reply, err = roundTrip(conn, resp.AppendCommandStrings(nil, "INFO", "cluster"))
		if err != nil {
			return err
		}
		if b, ok := resp.Bulk(reply); ok && bytes.Contains(b, []byte("cluster_enabled:1")) {
			return fmt.Errorf("node %s", errClusterNode)
		}
		return nil
	}
}

// Serve accepts clients on ln until Shutdown.
func (f *Frontend) Serve(ln net.Listener) error {
	f.goBackground(f.resyncLoop)
	return f.srv.Serve(ln)
}

func (f *Frontend) addSubscriber(ps *pubsub) {
	f.subMu.Lock()
	f.subscribers[ps] = struct{}{}
	f.subMu.Unlock()
}

func (f *Frontend) dropSubscriber(ps *pubsub) {
	f.subMu.Lock()
	delete(f.subscribers, ps)
	f.subMu.Unlock()
}

// kickResync asks resyncLoop for a pass now.
func (f *Frontend) kickResync() {
	select {
	case f.resyncKick <- struct{}{}:
	default:
	}
}

// resyncEvery is how often resyncLoop retries what a pass left undone (a
// node that could not be reached).
const resyncEvery = 500 * time.Millisecond

// resyncLoop moves subscriptions when the ring changes (see pubsub), until
// Shutdown.
func (f *Frontend) resyncLoop() {
	t := time.NewTicker(resyncEvery)
	defer t.Stop()
	changed := f.cl.Changed()
	seen := f.cl.Generation()
	again := false
	for {
		kicked := false
		select {
		case <-f.srv.Draining():
			return
		case <-f.resyncKick:
			kicked = true
		case <-changed: // with auto-eject, a node went down or up
		case <-t.C:
			again = f.resyncAgain.Swap(false) || again
		}
		changed = f.cl.Changed() // before Generation: a change after it closes this one
		g := f.cl.Generation()
		if g == seen && !again && !kicked {
			continue
		}
		seen, again = g, false
		f.subMu.Lock()
		list := make([]*pubsub, 0, len(f.subscribers))
		for ps := range f.subscribers {
			list = append(list, ps)
		}
		f.subMu.Unlock()
		for _, ps := range list {
			if !ps.resync() {
				again = true
			}
		}
	}
}

// Shutdown stops accepting, lets clients finish their requests until ctx
// ends, then closes every client and backend connection.
func (f *Frontend) Shutdown(ctx context.Context) error {
	err := f.srv.Shutdown(ctx)
	f.closePools()
	f.bg.Wait()
	return err
}

// closePools closes every node's connections; their requests fail.
func (f *Frontend) closePools() {
	for _, n := range f.cl.Nodes() {
		if p, ok := n.Data().(*nodePool); ok {
			p.close()
		}
	}
}

// CheckReload refuses what Reload cannot apply: the pool size (a client's
// requests go to the shared connection its id picks among pool_size ones;
// resizing would move it to another connection mid-stream, and its
// commands could then run out of order on the node).
func (f *Frontend) CheckReload(c *config.Config) error {
	if max(1, c.Redis.PoolSize) != f.poolSize() {
		return fmt.Errorf("redis.pool_size changed; restart to apply it")
	}
	return nil
}

// Reload applies a new configuration: new node lists (through the
// cluster), timeouts and passwords (the health probes' too). Listen, hash
// settings and the pool size need a restart (refused before anything is
// applied).
func (f *Frontend) Reload(c *config.Config) error {
	if err := f.CheckReload(c); err != nil {
		return err
	}
	nodes := make([]cluster.NodeSpec, len(c.Redis.Nodes))
	for i, n := range c.Redis.Nodes {
		nodes[i] = cluster.NodeSpec{Addr: n.Addr, Weight: n.Weight, Region: n.Region, Name: n.Name}
	}
	if err := f.cl.Update(nodes); err != nil {
		return err
	}
	rc := c.Redis
	f.conf.Store(&rc)
	return nil
}

// Addr is the listening address, once serving.
func (f *Frontend) Addr() net.Addr { return f.srv.Addr() }

func (f *Frontend) cfg() *config.Redis { return f.conf.Load() }

func (f *Frontend) poolSize() int { return max(1, f.cfg().PoolSize) }

func (f *Frontend) requestTimeout() time.Duration {
	if d := f.cfg().RequestTimeout.D(); d > 0 {
		return d
	}
	return 5 * time.Second
}

func (f *Frontend) writeTimeout() time.Duration { return max(f.requestTimeout(), 10*time.Second) }

func (f *Frontend) authRequired() bool {
	c := f.cfg()
	return c.FrontendPassword != "" || len(c.FrontendUsers) > 0
}

// goBackground runs fn on a goroutine that Shutdown waits for. A panic
// there (a bug: in a node connection's reader, a reply merge, a relay)
// ends that goroutine with a log line, not the process; the requests it
// leaves unanswered fail by their timeout.
func (f *Frontend) goBackground(fn func()) {
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer func() {
			if r := recover(); r != nil {
				f.log.Error("panic in a background goroutine (a bug); it ended", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
		}()
		fn()
	}()
}

// poolOf returns the frontend's pool of a node, creating it on first use.
func (f *Frontend) poolOf(n *cluster.Node) *nodePool {
	if p, ok := n.Data().(*nodePool); ok {
		return p
	}
	return n.CompareAndSetData(&nodePool{f: f, node: n, addr: n.Addr()}).(*nodePool)
}

func (f *Frontend) handle(ctx context.Context, conn net.Conn) frontend.CloseReason {
	c := f.newClient(ctx, conn)
	f.metrics.clients.Inc()
	defer f.metrics.clients.Dec()
	reason := c.serve()
	if reason == frontend.ReasonProtocolError {
		lingerClose(conn)
	}
	return reason
}

// lingerClose ends a connection closed for a protocol error without a
// reset: closing a socket with unread data sends an RST, which makes the
// client's kernel drop the error reply before the client reads it (a
// client still sending a large bad request). It stops writing (the reply
// is out) and discards what the client still sends, for up to a second.
func lingerClose(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.CloseWrite()
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 32<<10)
	for {
		if _, err := tc.Read(buf); err != nil {
			return
		}
	}
}

// backendVersion is the Redis version the nodes report.
func (f *Frontend) backendVersion() string {
	if v := f.version.Load(); v != nil {
		return *v
	}
	return "7.0.0"
}
