package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ambassador-proxy/ambassador/cluster"
)

// Sentinel errors of the backend view.
var (
	// ErrNoMetadata means no backend broker has answered a metadata
	// request yet.
	ErrNoMetadata = errors.New("kafka: no backend metadata yet")
	// ErrNoVersions means no backend broker has told its API versions
	// yet: a client would be offered the ambassador's own ranges, some of
	// which the brokers may lack (its connection is then closed when it
	// uses one, so that it asks again).
	ErrNoVersions = errors.New("kafka: no backend broker's API versions yet")
	// ErrUnknownBroker is a broker id missing from the backend metadata.
	ErrUnknownBroker = errors.New("kafka: unknown backend broker")
)

// brokerInfo is one backend broker.
type brokerInfo struct {
	id   int32
	addr string // host:port
	rack *string
}

// partInfo is the routing state of one partition.
type partInfo struct {
	leader int32 // -1: none
	epoch  int32
	err    int16
}

// topicInfo is one backend topic as the last metadata described it.
type topicInfo struct {
	name  string
	id    [16]byte
	err   int16
	parts []partInfo // indexed by partition number; gaps have leader -1
	asked time.Time  // when the request that described it was sent
}

// snapshot is an immutable view of the backend cluster; updates replace
// it whole.
type snapshot struct {
	brokers    map[int32]brokerInfo
	ids        []int32 // sorted broker ids
	byAddr     map[string]int32
	controller int32
	clusterID  *string
	topics     map[string]*topicInfo
	byID       map[[16]byte]*topicInfo
	at         time.Time
}

func emptySnapshot() *snapshot {
	return &snapshot{
		brokers:    map[int32]brokerInfo{},
		byAddr:     map[string]int32{},
		controller: -1,
		topics:     map[string]*topicInfo{},
		byID:       map[[16]byte]*topicInfo{},
	}
}

// leader returns the leader broker of a partition, named by topic name or
// (byID) topic id, or -1 and the Kafka error code to answer with.
func (s *snapshot) leader(name string, id [16]byte, byID bool, p int32) (int32, int16) {
	var t *topicInfo
	if byID {
		t = s.byID[id]
		if t == nil {
			return -1, kerr.UnknownTopicID.Code
		}
	} else {
		t = s.topics[name]
		if t == nil {
			return -1, kerr.UnknownTopicOrPartition.Code
		}
	}
	if p < 0 || int(p) >= len(t.parts) {
		if t.err != 0 {
			return -1, t.err
		}
		return -1, kerr.UnknownTopicOrPartition.Code
	}
	pi := t.parts[p]
	if pi.leader < 0 {
		if pi.err != 0 && pi.err != kerr.ReplicaNotAvailable.Code {
			return -1, pi.err
		}
		return -1, kerr.LeaderNotAvailable.Code
	}
	if _, ok := s.brokers[pi.leader]; !ok {
		return -1, kerr.LeaderNotAvailable.Code
	}
	return pi.leader, 0
}

// coordKey names a coordinator: type 0 group, 1 transaction.
type coordKey struct {
	typ int8
	key string
}

// backend is the ambassador's view of the backend cluster: the metadata
// snapshot, the API versions every broker supports, and the coordinator
// cache. It talks to the cluster through a kgo client.
type backend struct {
	f   *Frontend
	log *slog.Logger
	kcl *kgo.Client

	snap     atomic.Pointer[snapshot]
	versions atomic.Pointer[versionTable]
	loaded   atomic.Bool
	updateMu sync.Mutex // serialises snapshot updates

	verMu      sync.Mutex
	brokerVers map[string]*kmsg.ApiVersionsResponse // by broker address
	versAt     map[string]time.Time                 // when each was asked
	// reask: a metadata refresh failed (the cluster may have been
	// replaced, by another version, on the same addresses): every
	// broker's versions are asked again at the next success.
	reask atomic.Bool

	coordMu sync.RWMutex
	coords  map[coordKey]*coordEntry

	kick        chan struct{}
	lastRefresh atomic.Int64
	lastErr     atomic.Pointer[error] // of the last refresh; nil after a success
}

func newBackend(f *Frontend) *backend {
	b := &backend{
		f:          f,
		log:        f.log.With("component", "kafka-backend"),
		brokerVers: map[string]*kmsg.ApiVersionsResponse{},
		versAt:     map[string]time.Time{},
		coords:     map[coordKey]*coordEntry{},
		kick:       make(chan struct{}, 1),
	}
	b.snap.Store(emptySnapshot())
	return b
}

// start builds the kgo client over the seeds.
func (b *backend) start(seeds []string, dialTimeout, refresh time.Duration, sec *security) error {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	dial := d.DialContext
	if sec.tls != nil { // kgo takes a Dialer or a TLS config, not both
		dial = (&tls.Dialer{NetDialer: d, Config: sec.tls.Clone()}).DialContext
	}
	opts := []kgo.Opt{kgo.Dialer(dial)}
	if sec.mech != nil {
		opts = append(opts, kgo.SASL(sec.mech))
	}
	kcl, err := kgo.NewClient(append(opts,
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("ambassador"),
		kgo.SoftwareNameAndVersion("ambassador", "1"),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.MetadataMaxAge(max(refresh, time.Second)),
		kgo.RetryTimeout(10*time.Second),
	)...)
	if err != nil {
		return fmt.Errorf("backend client: %w", err)
	}
	b.kcl = kcl
	return nil
}

func (b *backend) close() {
	if b.kcl != nil {
		b.kcl.Close()
	}
}

// current returns the snapshot in force.
func (b *backend) current() *snapshot { return b.snap.Load() }

// triggerRefresh asks the refresh loop for a metadata refresh soon; calls
// coalesce.
func (b *backend) triggerRefresh() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// run refreshes metadata at once, then every interval and when kicked,
// until ctx ends.
func (b *backend) run(ctx context.Context) {
	const minGap = 100 * time.Millisecond
	backoff := 100 * time.Millisecond
	for {
		err := b.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.lastErr.Store(&err)
			b.reask.Store(true)
		} else {
			b.lastErr.Store(nil)
		}
		b.sweepCoordinators(time.Now().Add(-coordIdle))
		wait := b.f.settings().refresh
		if err != nil {
			b.log.Warn("backend metadata refresh failed", "error", err, "retry_in", backoff)
			wait = backoff
			backoff = min(backoff*2, 5*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-b.kick:
			t.Stop()
			if since := time.Since(time.Unix(0, b.lastRefresh.Load())); since < minGap {
				select {
				case <-ctx.Done():
					return
				case <-time.After(minGap - since):
				}
			}
		}
	}
}

// refresh loads the metadata of every topic from the backend.
func (b *backend) refresh(ctx context.Context) error {
	b.lastRefresh.Store(time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil // all topics
	asked := time.Now()
	resp, err := req.RequestWith(ctx, b.kcl)
	if err != nil {
		b.f.m.refreshes.WithLabelValues("failure").Inc()
		return fmt.Errorf("kafka: metadata: %w", err)
	}
	b.f.m.refreshes.WithLabelValues("success").Inc()
	b.apply(resp, true, asked)
	b.refreshVersions(ctx)
	return nil
}

// apply merges a backend metadata response into the snapshot: the brokers
// and controller always, the topics in it (full: every topic, so topics
// missing from it are gone). asked is when the request was sent: what the
// snapshot learned from a request sent later is newer and stays.
func (b *backend) apply(resp *kmsg.MetadataResponse, full bool, asked time.Time) {
	b.updateMu.Lock()
	defer b.updateMu.Unlock()
	old := b.snap.Load()
	s := &snapshot{
		brokers:    make(map[int32]brokerInfo, len(resp.Brokers)),
		byAddr:     make(map[string]int32, len(resp.Brokers)),
		controller: resp.ControllerID,
		clusterID:  resp.ClusterID,
		at:         time.Now(),
	}
	if len(resp.Brokers) == 0 { // keep what we knew
		s.brokers, s.byAddr, s.ids = old.brokers, old.byAddr, old.ids
	} else {
		for _, br := range resp.Brokers {
			addr := net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
			s.brokers[br.NodeID] = brokerInfo{id: br.NodeID, addr: addr, rack: br.Rack}
			s.byAddr[addr] = br.NodeID
			s.ids = append(s.ids, br.NodeID)
		}
		slices.Sort(s.ids)
	}
	if s.clusterID == nil {
		s.clusterID = old.clusterID
	}
	s.topics = make(map[string]*topicInfo, len(old.topics)+len(resp.Topics))
	s.byID = make(map[[16]byte]*topicInfo, len(old.byID)+len(resp.Topics))
	for k, v := range old.topics {
		if !full || v.asked.After(asked) { // a full answer drops the rest, unless newer
			s.topics[k] = v
			if v.id != ([16]byte{}) {
				s.byID[v.id] = v
			}
		}
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic == nil {
			continue
		}
		name := *t.Topic
		if ot := s.topics[name]; ot != nil && ot.asked.After(asked) {
			continue // we know newer
		}
		if t.ErrorCode == kerr.UnknownTopicOrPartition.Code || t.ErrorCode == kerr.UnknownTopicID.Code {
			if ot := s.topics[name]; ot != nil {
				delete(s.byID, ot.id)
			}
			delete(s.topics, name)
			continue
		}
		ti := &topicInfo{name: name, id: t.TopicID, err: t.ErrorCode, asked: asked}
		maxP := int32(-1)
		for _, p := range t.Partitions {
			maxP = max(maxP, p.Partition)
		}
		if maxP >= 0 && maxP < 1<<20 {
			ti.parts = make([]partInfo, maxP+1)
			for j := range ti.parts {
				ti.parts[j] = partInfo{leader: -1, epoch: -1}
			}
			for _, p := range t.Partitions {
				if p.Partition >= 0 {
					ti.parts[p.Partition] = partInfo{leader: p.Leader, epoch: p.LeaderEpoch, err: p.ErrorCode}
				}
			}
		}
		if ot := s.topics[name]; ot != nil && ot.id != ti.id {
			delete(s.byID, ot.id)
		}
		s.topics[name] = ti
		if ti.id != ([16]byte{}) {
			s.byID[ti.id] = ti
		}
	}
	b.snap.Store(s)
	if !b.loaded.Load() {
		b.loaded.Store(true)
		b.log.Info("backend metadata loaded", "brokers", len(s.brokers), "topics", len(s.topics))
	}
	if !sameBrokers(old, s) {
		b.f.m.brokers.Set(float64(len(s.brokers)))
		b.updateNodes(s)
		if !full {
			b.triggerRefresh() // learn the new brokers' versions
		}
	}
}

func sameBrokers(a, b *snapshot) bool {
	if len(a.brokers) != len(b.brokers) {
		return false
	}
	for id, x := range a.brokers {
		if y, ok := b.brokers[id]; !ok || y.addr != x.addr {
			return false
		}
	}
	return true
}

// updateNodes makes the cluster's node set the discovered brokers, so that
// health probes and /nodes cover every broker.
func (b *backend) updateNodes(s *snapshot) {
	if len(s.ids) == 0 {
		return
	}
	specs := make([]cluster.NodeSpec, 0, len(s.ids))
	for _, id := range s.ids {
		br := s.brokers[id]
		specs = append(specs, cluster.NodeSpec{Addr: br.addr, Weight: 1, Name: "broker-" + strconv.Itoa(int(id))})
	}
	if err := b.f.cl.Update(specs); err != nil {
		b.log.Error("cannot update the node set to the discovered brokers", "error", err)
		return
	}
	b.log.Info("backend brokers", "brokers", len(specs))
}

// node returns the cluster node of a broker address, or nil.
func (b *backend) node(addr string) *cluster.Node {
	for _, n := range b.f.cl.Nodes() {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// versionsMaxAge bounds how long a broker's versions are trusted: a
// broker restarted at another version (a rolling upgrade or rollback)
// is asked again within it.
const versionsMaxAge = 5 * time.Minute

// refreshVersions asks every broker whose versions are unknown, or asked
// long ago, or before the broker or a metadata refresh last failed, for
// them, then recomputes the intersection.
func (b *backend) refreshVersions(ctx context.Context) {
	s := b.snap.Load()
	all := b.reask.Swap(false)
	var wg sync.WaitGroup
	for _, id := range s.ids {
		br := s.brokers[id]
		b.verMu.Lock()
		_, known := b.brokerVers[br.addr]
		at := b.versAt[br.addr]
		b.verMu.Unlock()
		// A broker that failed since it was asked may have been
		// restarted at another version.
		fresh := time.Since(at) < versionsMaxAge
		if n := b.node(br.addr); n != nil && n.Health().Status().LastErrorAt.After(at) {
			fresh = false
		}
		if known && fresh && !all {
			continue
		}
		wg.Go(func() {
			req := kmsg.NewPtrApiVersionsRequest()
			req.ClientSoftwareName, req.ClientSoftwareVersion = "ambassador", "1"
			resp, err := req.RequestWith(ctx, b.kcl.Broker(int(id)))
			if err == nil && resp.ErrorCode != 0 {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			if err != nil {
				b.log.Warn("ApiVersions failed", "node", br.addr, "error", err)
				b.reask.Store(all) // asked again at the next refresh
				return
			}
			b.verMu.Lock()
			b.brokerVers[br.addr] = resp
			b.versAt[br.addr] = time.Now()
			b.verMu.Unlock()
		})
	}
	wg.Wait()
	b.verMu.Lock()
	var per []*kmsg.ApiVersionsResponse
	for _, id := range s.ids {
		if v := b.brokerVers[s.brokers[id].addr]; v != nil {
			per = append(per, v)
		}
	}
	// forget brokers that are gone
	for addr := range b.brokerVers {
		if _, ok := s.byAddr[addr]; !ok {
			delete(b.brokerVers, addr)
			delete(b.versAt, addr)
		}
	}
	b.verMu.Unlock()
	if len(per) > 0 {
		b.versions.Store(intersect(per))
	}
}

// anyBroker returns a broker chosen by the cluster's balancing policy
// among healthy ones, else any known broker, else -1.
func (b *backend) anyBroker() int32 {
	s := b.snap.Load()
	if n, err := b.f.cl.Pick(); err == nil {
		if id, ok := s.byAddr[n.Addr()]; ok {
			return id
		}
	}
	if len(s.ids) > 0 {
		return s.ids[int(time.Now().UnixNano()%int64(len(s.ids)))]
	}
	return -1
}

// controller returns the controller broker, or any broker.
func (b *backend) controller() int32 {
	s := b.snap.Load()
	if _, ok := s.brokers[s.controller]; ok {
		return s.controller
	}
	return b.anyBroker()
}

// coordinator returns the coordinator broker of a group (typ 0) or
// transactional id (typ 1), from the cache or the backend, or -1 and the
// error code the backend gave.
func (b *backend) coordinator(ctx context.Context, typ int8, key string) (int32, int16) {
	res := b.coordinators(ctx, typ, []string{key})
	r := res[key]
	return r.node, r.code
}

type coordResult struct {
	node int32
	code int16
	msg  *string
}

// coordEntry is a cached coordinator and when it was last used: entries
// unused for coordIdle are swept at the next metadata refresh, so that
// tools using a fresh group or transactional id each run do not grow the
// cache for the life of the process.
type coordEntry struct {
	node int32
	used atomic.Int64 // UnixNano
}

const coordIdle = 10 * time.Minute

// coordMax bounds the cache: clients name the keys (FindCoordinator with
// a million group ids held 140 MB for coordIdle). Past it, entries unused
// for a minute go, then any (an entry dropped is asked again when used).
const coordMax = 100_000

// trimCoordsLocked makes room in the cache; coordMu is held.
func (b *backend) trimCoordsLocked(now int64) {
	if len(b.coords) < coordMax {
		return
	}
	for k, e := range b.coords {
		if now-e.used.Load() > int64(time.Minute) {
			delete(b.coords, k)
		}
	}
	for k := range b.coords { // map order: an arbitrary half
		if len(b.coords) < coordMax/2 {
			break
		}
		delete(b.coords, k)
	}
}

// sweepCoordinators drops cached coordinators unused since before cutoff.
func (b *backend) sweepCoordinators(cutoff time.Time) {
	c := cutoff.UnixNano()
	b.coordMu.Lock()
	for k, e := range b.coords {
		if e.used.Load() < c {
			delete(b.coords, k)
		}
	}
	b.coordMu.Unlock()
}

// coordinators looks up many keys at once; cached ones are not asked.
func (b *backend) coordinators(ctx context.Context, typ int8, keys []string) map[string]coordResult {
	out := make(map[string]coordResult, len(keys))
	var miss []string
	s := b.snap.Load()
	now := time.Now().UnixNano()
	b.coordMu.RLock()
	for _, k := range keys {
		if e, ok := b.coords[coordKey{typ, k}]; ok {
			if _, known := s.brokers[e.node]; known {
				e.used.Store(now)
				out[k] = coordResult{node: e.node}
				continue
			}
		}
		miss = append(miss, k)
	}
	b.coordMu.RUnlock()
	if len(miss) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = typ
	req.CoordinatorKey = miss[0]
	req.CoordinatorKeys = miss
	resp, err := req.RequestWith(ctx, b.kcl)
	if err != nil {
		b.log.Warn("FindCoordinator failed", "keys", len(miss), "error", err)
		for _, k := range miss {
			out[k] = coordResult{node: -1, code: kerr.CoordinatorNotAvailable.Code}
		}
		return out
	}
	got := map[string]coordResult{}
	if len(resp.Coordinators) > 0 {
		for _, c := range resp.Coordinators {
			got[c.Key] = coordResult{node: c.NodeID, code: c.ErrorCode, msg: c.ErrorMessage}
		}
	} else {
		got[miss[0]] = coordResult{node: resp.NodeID, code: resp.ErrorCode, msg: resp.ErrorMessage}
	}
	unknownBroker := false
	b.coordMu.Lock()
	for _, k := range miss {
		r, ok := got[k]
		if !ok {
			r = coordResult{node: -1, code: kerr.CoordinatorNotAvailable.Code}
		}
		if r.code == 0 {
			if _, known := s.brokers[r.node]; !known {
				unknownBroker = true
			}
			e := &coordEntry{node: r.node}
			e.used.Store(now)
			b.trimCoordsLocked(now)
			b.coords[coordKey{typ, k}] = e
		}
		out[k] = r
	}
	b.coordMu.Unlock()
	if unknownBroker { // a broker we have not seen: load it now
		_ = b.refresh(ctx)
	}
	return out
}

// forgetCoordinator drops a cached coordinator after NOT_COORDINATOR or a
// failed connection.
func (b *backend) forgetCoordinator(typ int8, key string) {
	b.coordMu.Lock()
	delete(b.coords, coordKey{typ, key})
	b.coordMu.Unlock()
}

// forgetCoordinatorsOn drops every cached coordinator on a broker.
func (b *backend) forgetCoordinatorsOn(id int32) {
	b.coordMu.Lock()
	for k, e := range b.coords {
		if e.node == id {
			delete(b.coords, k)
		}
	}
	b.coordMu.Unlock()
}

// metadata issues a client's metadata request to the backend, merges the
// answer into the snapshot and returns it.
func (b *backend) metadata(ctx context.Context, req *kmsg.MetadataRequest) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	dup := *req
	dup.Version = 0 // kgo picks the version
	asked := time.Now()
	resp, err := dup.RequestWith(ctx, b.kcl)
	if err != nil {
		return nil, fmt.Errorf("kafka: metadata: %w", err)
	}
	b.apply(resp, req.Topics == nil, asked)
	return resp, nil
}
