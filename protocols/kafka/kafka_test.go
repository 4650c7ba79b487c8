package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ambassador-proxy/ambassador/cluster"
	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/protocols/frontend"
)

func newTestFrontend(t *testing.T) *Frontend {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.BootstrapServers = []config.Node{{Addr: "127.0.0.1:1", Weight: 1}}
	cl, err := cluster.New([]cluster.NodeSpec{{Addr: "127.0.0.1:1"}}, cluster.Options{Name: "kafka"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg, cl, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestIntersect(t *testing.T) {
	mk := func(keys ...[3]int16) *kmsg.ApiVersionsResponse {
		r := &kmsg.ApiVersionsResponse{}
		for _, k := range keys {
			r.ApiKeys = append(r.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k[0], MinVersion: k[1], MaxVersion: k[2]})
		}
		return r
	}
	tab := intersect([]*kmsg.ApiVersionsResponse{
		mk([3]int16{0, 3, 13}, [3]int16{1, 4, 18}, [3]int16{3, 0, 13}, [3]int16{68, 0, 1}),
		mk([3]int16{0, 0, 11}, [3]int16{1, 4, 17}, [3]int16{3, 1, 12}),
		mk([3]int16{0, 2, 12}, [3]int16{1, 0, 16}, [3]int16{3, 0, 13}, [3]int16{68, 0, 1}),
	})
	want := map[int16][2]int16{0: {3, 11}, 1: {4, 16}, 3: {1, 12}}
	for k, w := range want {
		if tab.min[k] != w[0] || tab.max[k] != w[1] {
			t.Errorf("key %d: v%d-%d, want v%d-%d", k, tab.min[k], tab.max[k], w[0], w[1])
		}
	}
	if tab.max[68] != -1 {
		t.Errorf("key 68 missing on one broker but offered up to v%d", tab.max[68])
	}
	// what the ambassador offers: also capped by what it handles
	f := newTestFrontend(t)
	f.be.versions.Store(tab)
	if lo, hi, ok := f.advertised(1); !ok || lo != 4 || hi != 16 {
		t.Errorf("Fetch offered v%d-%d (%v)", lo, hi, ok)
	}
	if _, _, ok := f.advertised(68); ok {
		t.Error("ConsumerGroupHeartbeat offered though a broker lacks it")
	}
	if _, _, ok := f.advertised(4); ok {
		t.Error("LeaderAndISR offered: the ambassador does not handle it")
	}
}

func TestErrorResponseMirrorsRequest(t *testing.T) {
	code := kerr.NotCoordinator.Code
	{
		req := &kmsg.OffsetCommitRequest{Version: 8, Group: "g", Topics: []kmsg.OffsetCommitRequestTopic{
			{Topic: "a", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1}, {Partition: 4}}},
			{Topic: "b", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}}},
		}}
		resp, ok := errorResponse(req, code)
		r := resp.(*kmsg.OffsetCommitResponse)
		if !ok || len(r.Topics) != 2 || r.Topics[0].Topic != "a" || len(r.Topics[0].Partitions) != 2 ||
			r.Topics[0].Partitions[1].Partition != 4 || r.Topics[0].Partitions[1].ErrorCode != code || r.Topics[1].Partitions[0].ErrorCode != code {
			t.Errorf("OffsetCommit error response %+v", r)
		}
	}
	{
		req := &kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{"x", "y"}}
		resp, ok := errorResponse(req, code)
		r := resp.(*kmsg.DescribeGroupsResponse)
		if !ok || len(r.Groups) != 2 || r.Groups[1].Group != "y" || r.Groups[1].ErrorCode != code {
			t.Errorf("DescribeGroups error response %+v", r)
		}
	}
	{
		req := &kmsg.FindCoordinatorRequest{Version: 4, CoordinatorKeys: []string{"k1", "k2"}}
		resp, _ := errorResponse(req, code)
		r := resp.(*kmsg.FindCoordinatorResponse)
		if len(r.Coordinators) != 2 || r.Coordinators[0].Key != "k1" || r.Coordinators[0].ErrorCode != code {
			t.Errorf("FindCoordinator error response %+v", r)
		}
	}
	{
		req := &kmsg.DescribeConfigsRequest{Version: 4, Resources: []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t"}}}
		resp, _ := errorResponse(req, code)
		r := resp.(*kmsg.DescribeConfigsResponse)
		if len(r.Resources) != 1 || r.Resources[0].ResourceName != "t" || r.Resources[0].ResourceType != kmsg.ConfigResourceTypeTopic || r.Resources[0].ErrorCode != code {
			t.Errorf("DescribeConfigs error response %+v", r)
		}
	}
	{
		req := &kmsg.JoinGroupRequest{Version: 9, Group: "g"}
		resp, ok := errorResponse(req, code)
		if r := resp.(*kmsg.JoinGroupResponse); !ok || r.ErrorCode != code {
			t.Errorf("JoinGroup error response %+v", r)
		}
	}
	{
		// deletions and upsertions are answered in one Results list, by user
		req := &kmsg.AlterUserSCRAMCredentialsRequest{Version: 0,
			Deletions:  []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "alice", Mechanism: 1}},
			Upsertions: []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{Name: "bob", Mechanism: 1}, {Name: "carol", Mechanism: 2}}}
		resp, ok := errorResponse(req, code)
		r := resp.(*kmsg.AlterUserSCRAMCredentialsResponse)
		var users []string
		for _, x := range r.Results {
			if x.ErrorCode != code {
				t.Errorf("AlterUserSCRAMCredentials result %+v without the error", x)
			}
			users = append(users, x.User)
		}
		if !ok || !slices.Equal(users, []string{"alice", "bob", "carol"}) {
			t.Errorf("AlterUserSCRAMCredentials error response for users %q, want alice, bob, carol", users)
		}
	}
	{
		// DescribeLogDirs has its top-level error field from v3 on only:
		// before, a response with it set reads as an empty success on the
		// wire, so there is no error response (the connection closes)
		for v, want := range map[int16]bool{0: false, 2: false, 3: true, 4: true} {
			req := &kmsg.DescribeLogDirsRequest{Version: v, Topics: []kmsg.DescribeLogDirsRequestTopic{{Topic: "t", Partitions: []int32{0}}}}
			if _, ok := errorResponse(req, code); ok != want {
				t.Errorf("DescribeLogDirs v%d: error response %v, want %v", v, ok, want)
			}
		}
	}
	{
		// OffsetFetch v7 lists partitions as bare int32s
		req := &kmsg.OffsetFetchRequest{Version: 7, Group: "g", Topics: []kmsg.OffsetFetchRequestTopic{{Topic: "a", Partitions: []int32{3, 5}}}}
		resp, _ := errorResponse(req, code)
		r := resp.(*kmsg.OffsetFetchResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 || r.Topics[0].Partitions[1].Partition != 5 || r.Topics[0].Partitions[1].ErrorCode != code || r.ErrorCode != code {
			t.Errorf("OffsetFetch v7 error response %+v", r)
		}
	}
}

func TestNextOffset(t *testing.T) {
	batch := func(base int64, lastDelta int32, epoch int32, size int) []byte {
		b := make([]byte, size)
		binary.BigEndian.PutUint64(b, uint64(base))
		binary.BigEndian.PutUint32(b[8:], uint32(size-12))
		binary.BigEndian.PutUint32(b[12:], uint32(epoch))
		b[16] = 2
		binary.BigEndian.PutUint32(b[23:], uint32(lastDelta))
		return b
	}
	two := append(batch(100, 9, 3, 80), batch(110, 4, 5, 90)...)
	if next, epoch, ok := nextOffset(two); !ok || next != 115 || epoch != 5 {
		t.Errorf("two batches: next %d epoch %d ok %v, want 115 5 true", next, epoch, ok)
	}
	cut := append(batch(100, 9, 3, 80), batch(110, 4, 5, 90)[:70]...)
	if next, _, ok := nextOffset(cut); !ok || next != 110 {
		t.Errorf("a batch cut short: next %d ok %v, want 110 (the cut one is fetched again)", next, ok)
	}
	if _, _, ok := nextOffset(batch(0, 0, 0, 70)[:40]); ok {
		t.Error("no complete batch reported an offset")
	}
	old := batch(0, 0, 0, 80)
	old[16] = 1
	if _, _, ok := nextOffset(old); ok {
		t.Error("a v1 message set reported an offset")
	}
}

// TestApplyKeepsNewer: a full metadata refresh asked before a client's
// metadata request must not erase the topics that request taught.
func TestApplyKeepsNewer(t *testing.T) {
	f := newTestFrontend(t)
	topic := func(name string, leader int32) kmsg.MetadataResponseTopic {
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = &name
		t.TopicID = [16]byte{byte(len(name)), byte(leader)}
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Leader = leader
		t.Partitions = append(t.Partitions, p)
		return t
	}
	brokers := []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "127.0.0.1", Port: 1}, {NodeID: 2, Host: "127.0.0.1", Port: 2}}
	t0 := time.Now()
	f.be.apply(&kmsg.MetadataResponse{Brokers: brokers, Topics: []kmsg.MetadataResponseTopic{topic("old", 1)}}, true, t0)
	// a client asks about "new" (and "old", which moved) at t2...
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
	f.be.apply(&kmsg.MetadataResponse{Brokers: brokers, Topics: []kmsg.MetadataResponseTopic{topic("new", 2), topic("old", 2)}}, false, t2)
	// ...and a full refresh asked at t1 answers after it
	f.be.apply(&kmsg.MetadataResponse{Brokers: brokers, Topics: []kmsg.MetadataResponseTopic{topic("old", 1)}}, true, t1)
	s := f.be.current()
	if l, code := s.leader("new", [16]byte{}, false, 0); code != 0 || l != 2 {
		t.Errorf("topic learned after the refresh was asked: leader %d code %d", l, code)
	}
	if l, _ := s.leader("old", [16]byte{}, false, 0); l != 2 {
		t.Errorf("stale refresh overwrote a newer leader: %d", l)
	}
	if l, _ := s.leader("", [16]byte{3, 2}, true, 0); l != 2 {
		t.Errorf("by topic id: leader %d", l)
	}
	// a later full refresh without "new" removes it
	f.be.apply(&kmsg.MetadataResponse{Brokers: brokers, Topics: []kmsg.MetadataResponseTopic{topic("old", 1)}}, true, t2.Add(time.Second))
	if _, code := f.be.current().leader("new", [16]byte{}, false, 0); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("deleted topic still routed (code %d)", code)
	}
	// the node set follows the brokers
	if n := len(f.cl.Nodes()); n != 2 {
		t.Errorf("%d nodes in the cluster, want the 2 brokers", n)
	}
}

func TestSnapshotLeaderErrors(t *testing.T) {
	f := newTestFrontend(t)
	name := "t"
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = &name
	for p, leader := range []int32{1, -1, 9} { // 9: a broker not in the metadata
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader = int32(p), leader
		mt.Partitions = append(mt.Partitions, mp)
	}
	f.be.apply(&kmsg.MetadataResponse{Brokers: []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "h", Port: 1}}, Topics: []kmsg.MetadataResponseTopic{mt}}, true, time.Now())
	s := f.be.current()
	for _, c := range []struct {
		topic string
		part  int32
		want  int16
	}{
		{"t", 0, 0}, {"t", 1, kerr.LeaderNotAvailable.Code}, {"t", 2, kerr.LeaderNotAvailable.Code},
		{"t", 3, kerr.UnknownTopicOrPartition.Code}, {"nope", 0, kerr.UnknownTopicOrPartition.Code},
	} {
		if _, code := s.leader(c.topic, [16]byte{}, false, c.part); code != c.want {
			t.Errorf("%s/%d: code %d, want %d", c.topic, c.part, code, c.want)
		}
	}
	if _, code := s.leader("", [16]byte{9}, true, 0); code != kerr.UnknownTopicID.Code {
		t.Errorf("unknown topic id: code %d", code)
	}
}

func TestCoordinatorCacheSweep(t *testing.T) {
	b := &backend{coords: map[coordKey]*coordEntry{}}
	now := time.Now()
	for i, age := range []time.Duration{time.Minute, 2 * coordIdle, coordIdle + time.Second} {
		e := &coordEntry{node: int32(i)}
		e.used.Store(now.Add(-age).UnixNano())
		b.coords[coordKey{0, strconv.Itoa(i)}] = e
	}
	b.sweepCoordinators(now.Add(-coordIdle))
	if len(b.coords) != 1 || b.coords[coordKey{0, "0"}] == nil {
		t.Errorf("after the sweep: %d entries, want only the one used a minute ago", len(b.coords))
	}
}

func TestOwnReplicas(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"*":               "*",
		"0:1,0:2,1:2,2:0": "0:1000000,1:1000000,2:1000000",
		" 3:1 , 4:2":      "3:1000000,4:1000000",
	} {
		v := in
		if got := ownReplicas(&v, "1000000"); *got != want {
			t.Errorf("ownReplicas(%q) = %q, want %q", in, *got, want)
		}
	}
	if ownReplicas(nil, "1") != nil {
		t.Error("ownReplicas(nil) not nil")
	}
}

func TestRefuseDuplicates(t *testing.T) {
	mk := func(n int, dups ...int32) *kmsg.ProduceRequest {
		req := &kmsg.ProduceRequest{Version: 9}
		rt := kmsg.ProduceRequestTopic{Topic: "t"}
		for i := range n {
			rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: int32(i)})
		}
		for _, d := range dups {
			rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: d})
		}
		req.Topics = append(req.Topics, rt, kmsg.ProduceRequestTopic{Topic: "u", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0}}})
		return req
	}
	for _, n := range []int{3, 100} { // the small and the map path
		req := mk(n, 1)
		codes := make([]int16, n+2)
		if !refuseDuplicates(req, codes, false) {
			t.Fatalf("n=%d: duplicate partition 1 not found", n)
		}
		for k, c := range codes {
			want := int16(0)
			if k == 1 || k == n { // both entries of t/1; u/0 is another topic
				want = kerr.InvalidRequest.Code
			}
			if c != want {
				t.Errorf("n=%d: entry %d code %d, want %d", n, k, c, want)
			}
		}
		codes = make([]int16, n+1)
		if refuseDuplicates(mk(n), codes, false) {
			t.Errorf("n=%d: a duplicate found in a request without one", n)
		}
	}
	// a topic named in two entries, its partition 2 in both
	req := &kmsg.ProduceRequest{Version: 9, Topics: []kmsg.ProduceRequestTopic{
		{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 1}, {Partition: 2}}},
		{Topic: "u", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 2}}},
		{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 2}, {Partition: 3}}},
	}}
	codes := make([]int16, 5)
	if !refuseDuplicates(req, codes, false) || !slices.Equal(codes, []int16{0, kerr.InvalidRequest.Code, 0, kerr.InvalidRequest.Code, 0}) {
		t.Errorf("topic named twice: codes %v", codes)
	}
}

func TestNewFetchPartOneEntryPerTopic(t *testing.T) {
	for _, topics := range []int{2, 20} { // the look-back and the map path
		var items []fetchItem
		for round := range 2 { // every topic twice, interleaved
			for i := range topics {
				it := fetchItem{topic: "t" + strconv.Itoa(i)}
				it.p.Partition = int32(round)
				items = append(items, it)
			}
		}
		part := newFetchPart(0, &kmsg.FetchRequest{Version: 12}, 1, items, false)
		if len(part.req.Topics) != topics {
			t.Fatalf("%d topics: %d topic entries", topics, len(part.req.Topics))
		}
		for i, rt := range part.req.Topics {
			if rt.Topic != "t"+strconv.Itoa(i) || len(rt.Partitions) != 2 || rt.Partitions[0].Partition != 0 || rt.Partitions[1].Partition != 1 {
				t.Errorf("%d topics: entry %d = %s %+v", topics, i, rt.Topic, rt.Partitions)
			}
		}
	}
}

// TestQueuedRequestTimeCountsFromHead: a broker answers a connection's
// requests in order, so a request queued behind one the broker may hold
// for long (a JoinGroup, up to its rebalance timeout) has its own time
// counted from when it reaches the head; with a deadline fixed when it was
// sent, the connection failed though the broker answered both. A request
// with a negative timeout (answered at once by brokers) must not get a
// deadline in the past either. Against a real kfake broker.
func TestQueuedRequestTimeCountsFromHead(t *testing.T) {
	old := baseTimeout
	baseTimeout = 500 * time.Millisecond
	defer func() { baseTimeout = old }()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	held := 0
	joined := make(chan struct{})
	kc.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if held++; held == 1 { // the first join is held past the heartbeat's own time
			kc.SleepControl(func() { time.Sleep(1500 * time.Millisecond); close(joined) })
		}
		return nil, nil, false
	})
	// the heartbeat's answer comes a little after the join's, as it would
	// from a broker that took it up after the join
	kc.ControlKey(int16(kmsg.Heartbeat), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.SleepControl(func() { <-joined; time.Sleep(200 * time.Millisecond) })
		return nil, nil, false
	})
	_, b := dialTestBroker(t, kc, nil)
	join := func(timeout int32) *kmsg.JoinGroupRequest {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Version = 5
		r.Group = "g"
		r.ProtocolType = "consumer"
		r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = timeout, timeout
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		return r
	}
	type answer struct {
		resp kmsg.Response
		err  error
	}
	got := make(chan answer, 3)
	cb := func(r kmsg.Response, err error) { got <- answer{r, err} }
	id := "t"
	b.send(&id, join(3000), nil, cb)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 3
	hb.Group, hb.Generation, hb.MemberID = "g", 1, "nobody"
	b.send(&id, hb, nil, cb)
	b.send(&id, join(-60000), nil, cb) // a broker answers it at once
	for i, what := range []string{"the held JoinGroup", "the Heartbeat queued behind it", "a JoinGroup with a negative timeout"} {
		select {
		case a := <-got:
			if a.err != nil {
				t.Errorf("%s (answer %d): %v; the broker answered it", what, i, a.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no answer", what)
		}
	}
}

// TestPanicClosesOnlyTheClient: a panic (a bug) in a response's callback
// on a broker connection's reader, or on a goroutine working for a client,
// closes that client's connection with a log line; the process goes on.
func TestPanicClosesOnlyTheClient(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	told := make(chan any, 1)
	f, b := dialTestBroker(t, kc, func(r any) { told <- r })
	id := "t"
	b.send(&id, kmsg.NewPtrApiVersionsRequest(), nil, func(kmsg.Response, error) { panic("bug in a callback") })
	select {
	case r := <-told:
		if r != "bug in a callback" {
			t.Errorf("told %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the panic was not reported")
	}
	after := make(chan error, 1)
	b.send(&id, kmsg.NewPtrApiVersionsRequest(), nil, func(_ kmsg.Response, err error) { after <- err })
	if err := <-after; err == nil {
		t.Error("the broker connection whose reader panicked still takes requests")
	}

	// a goroutine of a client's
	a, other := net.Pipe()
	defer other.Close()
	c := &clientConn{f: f, conn: a, log: slog.New(slog.DiscardHandler)}
	c.reason.Store(-1)
	c.async(func() { panic("bug in a request goroutine") })
	c.wg.Wait()
	if got := frontend.CloseReason(c.reason.Load()); got != frontend.ReasonPanic {
		t.Errorf("client closed for %v, want a panic", got)
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("the client's connection is still open")
	}
}

// TestReadyNeedsVersions: metadata loads before the brokers' API versions
// are asked; a client connecting in between was offered the ambassador's
// own ranges, and had its connection closed when it used a version the
// brokers lack (TestKafkaSASLSessionRenewal failed so, under load). Ready
// waits for the versions too.
func TestReadyNeedsVersions(t *testing.T) {
	f := newTestFrontend(t)
	f.be.loaded.Store(true)
	if err := f.Ready(); !errors.Is(err, ErrNoVersions) {
		t.Errorf("Ready with metadata but no versions: %v", err)
	}
	f.be.versions.Store(intersect([]*kmsg.ApiVersionsResponse{{ApiKeys: []kmsg.ApiVersionsResponseApiKey{{ApiKey: 0, MaxVersion: 9}}}}))
	if err := f.Ready(); err != nil {
		t.Errorf("Ready with metadata and versions: %v", err)
	}
}

// TestCoordinatorCacheBounded: clients name the cache's keys; it stays
// under coordMax, dropping idle entries first.
func TestCoordinatorCacheBounded(t *testing.T) {
	b := &backend{coords: map[coordKey]*coordEntry{}}
	now := time.Now().UnixNano()
	recent := &coordEntry{node: 1}
	recent.used.Store(now)
	b.coords[coordKey{0, "recent"}] = recent
	for i := range coordMax + 10 {
		b.trimCoordsLocked(now)
		e := &coordEntry{}
		e.used.Store(now - int64(2*time.Minute))
		b.coords[coordKey{0, strconv.Itoa(i)}] = e
	}
	if len(b.coords) > coordMax {
		t.Errorf("%d entries, over %d", len(b.coords), coordMax)
	}
	if b.coords[coordKey{0, "recent"}] == nil {
		t.Error("the entry in use was dropped before the idle ones")
	}
}

// TestDialFailureForgetsCoordinators: a broker that cannot be dialed,
// still listed in the metadata (it died; the cluster has not dropped it
// yet), loses the groups and transactional ids cached as coordinated by
// it, as one whose connection failed does: the client's next
// FindCoordinator asks the backend, which may name the new coordinator.
func TestDialFailureForgetsCoordinators(t *testing.T) {
	f := newTestFrontend(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	s := emptySnapshot()
	s.brokers[7] = brokerInfo{id: 7, addr: dead}
	s.brokers[8] = brokerInfo{id: 8, addr: "127.0.0.1:1"}
	s.byAddr[dead] = 7
	f.be.snap.Store(s)
	f.be.coordMu.Lock()
	for _, k := range []coordKey{{coordGroup, "g"}, {coordTxn, "tx"}} {
		f.be.coords[k] = &coordEntry{node: 7}
	}
	f.be.coords[coordKey{coordGroup, "elsewhere"}] = &coordEntry{node: 8}
	f.be.coordMu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &clientConn{f: f, ctx: ctx, log: slog.New(slog.DiscardHandler), bconns: map[bkey]*brokerConn{}}
	if _, err := c.backendConn(7, laneMain); err == nil {
		t.Fatal("dialed a closed port")
	}
	f.be.coordMu.Lock()
	defer f.be.coordMu.Unlock()
	for _, k := range []coordKey{{coordGroup, "g"}, {coordTxn, "tx"}} {
		if f.be.coords[k] != nil {
			t.Errorf("%v still cached on the broker that cannot be dialed", k)
		}
	}
	if f.be.coords[coordKey{coordGroup, "elsewhere"}] == nil {
		t.Error("a coordinator on another broker was dropped too")
	}
}

// dialTestBroker connects a broker connection of a test frontend to kfake
// broker 0; it is closed, and its goroutines waited for, at the test's end.
func dialTestBroker(t *testing.T, kc *kfake.Cluster, panicked func(any)) (*Frontend, *brokerConn) {
	t.Helper()
	f := newTestFrontend(t)
	sec, err := newSecurity(&config.Default().Kafka)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	b, err := dialBroker(context.Background(), sec, bkey{id: 0, addr: kc.ListenAddrs()[0], lane: laneMain}, time.Second, nil, f.m, &wg, nil, func(int) {}, panicked)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.close()
		wg.Wait()
	})
	return f, b
}
