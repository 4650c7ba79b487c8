package e2e

// End-to-end tests of the Kafka frontend: a real 3-broker kfake cluster, the
// real ambassador server in process, and three independent clients
// (franz-go kgo, segmentio/kafka-go, and kcat over librdkafka).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/e2e/harness"
	"github.com/ambassador-proxy/ambassador/protocols/kafka"
	"github.com/ambassador-proxy/ambassador/protocols/kafka/wire"
	"github.com/ambassador-proxy/ambassador/server"
)

const ambID = kafka.AmbassadorNodeID

// kafkaEnv is a 3-broker kfake cluster with the ambassador in front.
type kafkaEnv struct {
	t       testing.TB
	fake    *kfake.Cluster
	brokers []string
	srv     *server.Server
	addr    string // the ambassador's Kafka listener
	direct  *kgo.Client
	env     map[string]string // the ambassador's variables; Reload reads them again
	stop    func()            // shuts the ambassador down (as on SIGTERM) and waits for it
}

func newKafkaEnv(t testing.TB, opts ...kfake.Opt) *kafkaEnv {
	t.Helper()
	return newKafkaEnvWith(t, nil, opts...)
}

// newKafkaEnvWith starts the ambassador with extra variables.
func newKafkaEnvWith(t testing.TB, env map[string]string, opts ...kfake.Opt) *kafkaEnv {
	t.Helper()
	kc := harness.NewKafka(t, 3, append([]kfake.Opt{kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(6)}, opts...)...)
	e := &kafkaEnv{t: t, fake: kc.Cluster, brokers: kc.Addrs}
	var err error
	e.direct, err = kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.direct.Close)
	e.startAmbassador(env)
	e.eventually(10*time.Second, "ambassador ready", func() bool { return e.srv.Readyz().Ready })
	return e
}

func kafkaLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("KAFKA_E2E_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// startAmbassador runs the real server in process, configured through
// config.Load from the variables it would get in production.
func (e *kafkaEnv) startAmbassador(extraEnv map[string]string) {
	t := e.t
	t.Helper()
	env := map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": strings.Join(e.brokers, ","),
		"KAFKA_LISTEN":            "127.0.0.1:0",
		"ADMIN_LISTEN":            "127.0.0.1:0",
		"HEALTH_CHECK_INTERVAL":   "300ms",
		"KAFKA_METADATA_REFRESH":  "1s",
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	e.env = env
	load := func() (*config.Config, error) {
		return config.Load(nil, func(k string) (string, bool) { v, ok := e.env[k]; return v, ok })
	}
	cfg, err := load()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := server.New(cfg, server.Options{Logger: kafkaLogger(t), Load: load})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	e.stop = runServer(t, srv)
	e.srv = srv
	e.addr = srv.Addr("kafka").String()
}

func (e *kafkaEnv) eventually(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a kgo client of the ambassador.
func (e *kafkaEnv) client(opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.addr)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic directly on the backend and spreads its
// partitions: partition p led by broker p%3, so that every request about
// it spans the three brokers.
func (e *kafkaEnv) createTopic(topic string, partitions int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(e.direct).CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		e.t.Fatalf("create topic %s: %v", topic, err)
	}
	for p := range partitions {
		if err := e.fake.MoveTopicPartition(topic, int32(p), int32(p%3)); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *kafkaEnv) kcat(ctx context.Context, stdin string, args ...string) (string, error) {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, "kcat", append([]string{"-b", e.addr}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kcat %v: %w: %s", args, err, errb.String())
	}
	return out.String(), nil
}

// raw sends one request to addr on a fresh connection and returns the
// decoded response.
func raw(t testing.TB, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return rawOn(t, c, req)
}

func rawOn(t testing.TB, c net.Conn, req kmsg.Request) kmsg.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	id := "e2e-raw"
	if _, err := c.Write(wire.AppendRequest(nil, 7, &id, req)); err != nil {
		t.Fatal(err)
	}
	frame, err := wire.ReadFrame(bufio.NewReader(c), 1<<30, nil)
	if err != nil {
		t.Fatalf("%s v%d: read response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if corr, _ := wire.ResponseCorrelation(frame); corr != 7 {
		t.Fatalf("correlation id %d, want 7", corr)
	}
	resp, err := wire.DecodeResponse(req.Key(), req.GetVersion(), frame)
	if err != nil {
		t.Fatalf("%s v%d: decode response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// backendLeak walks a response and reports any broker id field holding a
// backend id, or any host:port of a backend broker.
func (e *kafkaEnv) backendLeak(resp kmsg.Response) string {
	ports := map[int64]bool{}
	for _, b := range e.brokers {
		_, p, _ := net.SplitHostPort(b)
		n, _ := strconv.Atoi(p)
		ports[int64(n)] = true
	}
	idFields := map[string]bool{"NodeID": true, "LeaderID": true, "Leader": true, "ControllerID": true, "Replicas": true, "ISR": true, "PreferredReadReplica": true}
	var leak string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				f := v.Type().Field(i)
				if !f.IsExported() {
					continue
				}
				fv := v.Field(i)
				name := path + "." + f.Name
				switch {
				case idFields[f.Name] && fv.Kind() == reflect.Int32:
					if id := fv.Int(); id >= 0 && id != int64(ambID) {
						leak = fmt.Sprintf("%s = %d", name, id)
					}
				case idFields[f.Name] && fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Int32:
					for j := 0; j < fv.Len(); j++ {
						if id := fv.Index(j).Int(); id != int64(ambID) {
							leak = fmt.Sprintf("%s[%d] = %d", name, j, id)
						}
					}
				case f.Name == "Port" && fv.Kind() == reflect.Int32 && ports[fv.Int()]:
					leak = fmt.Sprintf("%s = %d (a backend port)", name, fv.Int())
				default:
					walk(fv, name)
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.String:
			for _, b := range e.brokers {
				if strings.Contains(v.String(), b) {
					leak = fmt.Sprintf("%s = %q", path, v.String())
				}
			}
		}
	}
	walk(reflect.ValueOf(resp), kmsg.NameForKey(resp.Key()))
	return leak
}

type rec struct{ key, value string }

func produceKgo(t testing.TB, cl *kgo.Client, topic string, recs []rec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Topic: topic, Key: []byte(r.key), Value: []byte(r.value)}
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeKgo reads n records of topic from the start with a fresh client
// (the ambassador's when seeds is nil), failing on more or fewer.
func (e *kafkaEnv) consumeKgo(t testing.TB, topic string, n int, seeds []string, opts ...kgo.Opt) []rec {
	t.Helper()
	if seeds == nil {
		seeds = []string{e.addr}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []rec
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(out), n, topic)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, rec{string(r.Key), string(r.Value)}) })
	}
	// nothing more may come
	ctx2, cancel2 := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel2()
	fs := cl.PollFetches(ctx2)
	fs.EachRecord(func(r *kgo.Record) { out = append(out, rec{string(r.Key), string(r.Value)}) })
	if len(out) != n {
		t.Fatalf("consumed %d records of %s, want exactly %d", len(out), topic, n)
	}
	return out
}

func makeRecs(prefix string, n int) []rec {
	out := make([]rec, n)
	for i := range out {
		out[i] = rec{fmt.Sprintf("%s-k%d", prefix, i%17), fmt.Sprintf("%s-v%d", prefix, i)}
	}
	return out
}

func sameRecs(t testing.TB, what string, got, want []rec) {
	t.Helper()
	g := slices.Clone(got)
	w := slices.Clone(want)
	less := func(a, b rec) int { return strings.Compare(a.value+"\x00"+a.key, b.value+"\x00"+b.key) }
	slices.SortFunc(g, less)
	slices.SortFunc(w, less)
	if !slices.Equal(g, w) {
		t.Fatalf("%s: got %d records, want %d; first got %v, first want %v", what, len(g), len(w), head(g), head(w))
	}
}

func head(r []rec) []rec { return r[:min(3, len(r))] }

// ---------------------------------------------------------------------

func TestKafkaMetadataShowsOneBroker(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("meta", 6)
	_, port, _ := net.SplitHostPort(e.addr)

	t.Run("kgo", func(t *testing.T) {
		adm := kadm.NewClient(e.client())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, "meta")
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Brokers) != 1 || md.Brokers[0].NodeID != ambID || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))) != e.addr {
			t.Fatalf("brokers %+v, want only the ambassador %d at %s", md.Brokers, ambID, e.addr)
		}
		if md.Controller != ambID {
			t.Errorf("controller %d, want %d", md.Controller, ambID)
		}
		direct, err := kadm.NewClient(e.direct).Metadata(ctx, "meta")
		if err != nil {
			t.Fatal(err)
		}
		td, ta := direct.Topics["meta"], md.Topics["meta"]
		if ta.ID != td.ID || len(ta.Partitions) != 6 || len(td.Partitions) != 6 {
			t.Fatalf("topic id %v partitions %d, backend says %v and %d", ta.ID, len(ta.Partitions), td.ID, len(td.Partitions))
		}
		for _, p := range ta.Partitions {
			if p.Leader != ambID || !slices.Equal(p.Replicas, []int32{ambID}) || !slices.Equal(p.ISR, []int32{ambID}) {
				t.Errorf("partition %d: leader %d replicas %v isr %v, want the ambassador alone", p.Partition, p.Leader, p.Replicas, p.ISR)
			}
			if p.LeaderEpoch != td.Partitions[p.Partition].LeaderEpoch {
				t.Errorf("partition %d: leader epoch %d, backend %d", p.Partition, p.LeaderEpoch, td.Partitions[p.Partition].LeaderEpoch)
			}
		}
		if md.Cluster != direct.Cluster {
			t.Errorf("cluster id %q, backend %q", md.Cluster, direct.Cluster)
		}
	})

	t.Run("kafka-go", func(t *testing.T) {
		conn, err := segkafka.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		bs, err := conn.Brokers()
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != 1 || bs[0].ID != int(ambID) || strconv.Itoa(bs[0].Port) != port {
			t.Fatalf("brokers %+v, want only the ambassador", bs)
		}
		ps, err := conn.ReadPartitions("meta")
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 6 {
			t.Fatalf("%d partitions, want 6", len(ps))
		}
		for _, p := range ps {
			if p.Leader.ID != int(ambID) || strconv.Itoa(p.Leader.Port) != port {
				t.Errorf("partition %d leader %+v, want the ambassador", p.ID, p.Leader)
			}
		}
	})

	t.Run("kcat", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := e.kcat(ctx, "", "-L", "-J", "-t", "meta")
		if err != nil {
			t.Fatal(err)
		}
		var md struct {
			ControllerID int `json:"controllerid"`
			Brokers      []struct {
				ID   int    `json:"id"`
				Name string `json:"name"`
			} `json:"brokers"`
			Topics []struct {
				Topic      string `json:"topic"`
				Partitions []struct {
					Partition int `json:"partition"`
					Leader    int `json:"leader"`
					Replicas  []struct {
						ID int `json:"id"`
					} `json:"replicas"`
				} `json:"partitions"`
			} `json:"topics"`
		}
		if err := json.Unmarshal([]byte(out), &md); err != nil {
			t.Fatalf("kcat -L -J: %v\n%s", err, out)
		}
		if len(md.Brokers) != 1 || md.Brokers[0].ID != int(ambID) || md.Brokers[0].Name != e.addr {
			t.Fatalf("kcat sees brokers %+v, want only %d at %s", md.Brokers, ambID, e.addr)
		}
		if md.ControllerID != int(ambID) {
			t.Errorf("kcat controller %d", md.ControllerID)
		}
		if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 6 {
			t.Fatalf("kcat topics %+v", md.Topics)
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Leader != int(ambID) || len(p.Replicas) != 1 || p.Replicas[0].ID != int(ambID) {
				t.Errorf("kcat partition %+v", p)
			}
		}
		for _, b := range e.brokers {
			if strings.Contains(out, b) {
				t.Errorf("kcat -L shows backend broker %s", b)
			}
		}
	})

	t.Run("nodes", func(t *testing.T) {
		// /nodes covers every discovered broker, probed with ApiVersions
		e.eventually(5*time.Second, "3 brokers up in /nodes", func() bool {
			var up int
			for _, c := range e.srv.Nodes().Clusters {
				if c.Name != "kafka" {
					continue
				}
				for _, n := range c.Nodes {
					if n.State == "up" && !n.LastProbe.IsZero() && slices.Contains(e.brokers, n.Addr) {
						up++
					}
				}
			}
			return up == 3
		})
	})
}

func TestKafkaProduceConsume(t *testing.T) {
	e := newKafkaEnv(t)

	t.Run("kgo-idempotent-to-kcat", func(t *testing.T) {
		e.createTopic("pc-kgo", 6)
		cl := e.client(kgo.RequiredAcks(kgo.AllISRAcks())) // idempotent by default
		want := makeRecs("kgo", 600)
		produceKgo(t, cl, "pc-kgo", want)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := e.kcat(ctx, "", "-C", "-t", "pc-kgo", "-o", "beginning", "-e", "-q", "-f", "%k|%s\n")
		if err != nil {
			t.Fatal(err)
		}
		sameRecs(t, "kcat consuming kgo's records", parseLines(out), want)
		// and the same through the backend directly: nothing lost, nothing doubled
		sameRecs(t, "backend", e.consumeKgo(t, "pc-kgo", len(want), e.brokers), want)
	})

	t.Run("kcat-idempotent-to-kafka-go-group", func(t *testing.T) {
		e.createTopic("pc-kcat", 6)
		want := makeRecs("kcat", 400)
		var in strings.Builder
		for _, r := range want {
			fmt.Fprintf(&in, "%s|%s\n", r.key, r.value)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := e.kcat(ctx, in.String(), "-P", "-t", "pc-kcat", "-K", "|",
			"-X", "enable.idempotence=true", "-X", "acks=all"); err != nil {
			t.Fatal(err)
		}
		r := segkafka.NewReader(segkafka.ReaderConfig{
			Brokers: []string{e.addr}, GroupID: "kafka-go-group", Topic: "pc-kcat",
			StartOffset: segkafka.FirstOffset, MaxWait: 200 * time.Millisecond,
		})
		defer r.Close()
		var got []rec
		for len(got) < len(want) {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("kafka-go group reader after %d records: %v", len(got), err)
			}
			got = append(got, rec{string(m.Key), string(m.Value)})
		}
		sameRecs(t, "kafka-go consuming kcat's records", got, want)
	})

	t.Run("kafka-go-acks-all-to-kgo", func(t *testing.T) {
		e.createTopic("pc-kafkago", 6)
		w := &segkafka.Writer{Addr: segkafka.TCP(e.addr), Topic: "pc-kafkago", RequiredAcks: segkafka.RequireAll, Transport: &segkafka.Transport{},
			Balancer: &segkafka.Hash{}, BatchTimeout: 5 * time.Millisecond}
		defer w.Close()
		want := makeRecs("kafkago", 500)
		msgs := make([]segkafka.Message, len(want))
		for i, r := range want {
			msgs[i] = segkafka.Message{Key: []byte(r.key), Value: []byte(r.value)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		sameRecs(t, "kgo consuming kafka-go's records", e.consumeKgo(t, "pc-kafkago", len(want), nil), want)
	})

	t.Run("kgo-acks0", func(t *testing.T) {
		e.createTopic("pc-acks0", 6)
		cl := e.client(kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
		want := makeRecs("acks0", 300)
		produceKgo(t, cl, "pc-acks0", want)
		// acks=0 is answered by nobody; the records still arrive
		sameRecs(t, "acks=0 records", e.consumeKgo(t, "pc-acks0", len(want), nil), want)
	})
}

func parseLines(out string) []rec {
	var got []rec
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		k, v, _ := strings.Cut(l, "|")
		got = append(got, rec{k, v})
	}
	return got
}

// TestKafkaCompressionUntouched sends record batches compressed with each
// codec through the ambassador and checks that the backend stored the very
// bytes that were sent (only the offset and leader epoch, which the broker
// assigns, differ), that a fetch through the ambassador returns the very
// bytes the backend returns, and that the three clients, producing and
// consuming compressed batches through it, get their records back.
func TestKafkaCompressionUntouched(t *testing.T) {
	e := newKafkaEnv(t)
	codecs := []struct {
		name  string
		id    int8
		codec kgo.CompressionCodec
		seg   compress.Compression
	}{
		{"gzip", 1, kgo.GzipCompression(), compress.Gzip},
		{"snappy", 2, kgo.SnappyCompression(), compress.Snappy},
		{"lz4", 3, kgo.Lz4Compression(), compress.Lz4},
		{"zstd", 4, kgo.ZstdCompression(), compress.Zstd},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "comp-" + c.name
			e.createTopic(topic, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// 1. raw batches, one per partition, through the ambassador
			var want []rec
			sent := map[int32][]byte{}
			conn, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for p := range int32(3) {
				recs := makeRecs(fmt.Sprintf("%s-raw%d", c.name, p), 50)
				batch := compressedBatch(t, c.codec, recs)
				if codec := int8(binary.BigEndian.Uint16(batch[21:]) & 7); codec != c.id {
					t.Fatalf("built a batch with codec %d, want %d", codec, c.id)
				}
				sent[p] = batch
				req := kmsg.NewPtrProduceRequest()
				req.Version = []int16{7, 9, 11}[p] // non-flexible and flexible
				req.Acks = -1
				req.TimeoutMillis = 5000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition = p
				rp.Records = batch
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				e.eventually(5*time.Second, "raw produce accepted", func() bool {
					resp := rawOn(t, conn, req).(*kmsg.ProduceResponse)
					return resp.Topics[0].Partitions[0].ErrorCode == 0
				})
				want = append(want, recs...)
			}
			for p := range int32(3) {
				stored := e.fetchRaw(t, "", topic, p)
				n, _, crcOK := batchInfo(t, stored)
				b := sent[p]
				if n != len(b) || !bytes.Equal(stored[8:12], b[8:12]) || !bytes.Equal(stored[16:n], b[16:]) || !crcOK {
					t.Fatalf("partition %d: the backend stored a batch of %d bytes differing from the %d-byte %s batch sent (crc ok %v)", p, n, len(b), c.name, crcOK)
				}
			}

			// 2. the clients, each compressing
			kr := makeRecs(c.name+"-kgo", 300)
			produceKgo(t, e.client(kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(20*time.Millisecond)), topic, kr)
			want = append(want, kr...)

			sr := makeRecs(c.name+"-kafkago", 60)
			w := &segkafka.Writer{Addr: segkafka.TCP(e.addr), Topic: topic, RequiredAcks: segkafka.RequireAll, Transport: &segkafka.Transport{},
				Compression: c.seg, BatchTimeout: 5 * time.Millisecond}
			msgs := make([]segkafka.Message, len(sr))
			for i, r := range sr {
				msgs[i] = segkafka.Message{Key: []byte(r.key), Value: []byte(r.value)}
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			w.Close()
			want = append(want, sr...)

			cr := makeRecs(c.name+"-kcat", 40)
			var in strings.Builder
			for _, r := range cr {
				fmt.Fprintf(&in, "%s|%s\n", r.key, r.value)
			}
			if _, err := e.kcat(ctx, in.String(), "-P", "-t", topic, "-K", "|", "-z", c.name); err != nil {
				t.Fatal(err)
			}
			want = append(want, cr...)

			// 3. fetched through the ambassador byte for byte as from the
			// backend; every batch in the codec (or uncompressed, which
			// clients choose when compressing would not shrink a batch)
			compressed := 0
			perClient := map[string][2]int{} // producer: batches compressed, plain
			dec := kgo.DefaultDecompressor()
			for p := range int32(3) {
				viaBackend := e.fetchRaw(t, "", topic, p)
				viaAmb := e.fetchRaw(t, e.addr, topic, p)
				if !bytes.Equal(viaBackend, viaAmb) {
					t.Fatalf("partition %d: fetch through the ambassador returned %d bytes differing from the backend's %d", p, len(viaAmb), len(viaBackend))
				}
				for b := viaBackend; len(b) > 0; {
					n, codec, crcOK := batchInfo(t, b)
					if codec != c.id && codec != 0 {
						t.Errorf("partition %d: a batch with codec %d in a %s topic", p, codec, c.name)
					}
					if codec == c.id {
						compressed++
					}
					// which producer wrote it: the keys name it
					body := b[61:n]
					if codec != 0 {
						var err error
						if body, err = dec.Decompress(body, kgo.CompressionCodecType(codec)); err != nil {
							t.Fatalf("partition %d: %s batch does not decompress: %v", p, c.name, err)
						}
					}
					for _, who := range []string{"-raw", "-kgo", "-kafkago", "-kcat"} {
						if bytes.Contains(body, []byte(c.name+who)) {
							n := perClient[who]
							if codec == c.id {
								n[0]++
							} else {
								n[1]++
							}
							perClient[who] = n
						}
					}
					if !crcOK {
						t.Errorf("partition %d: batch CRC mismatch", p)
					}
					b = b[n:]
				}
			}
			if compressed < 6 { // 3 raw + client batches
				t.Errorf("only %d %s batches stored", compressed, c.name)
			}
			// every producer's compressed batches arrived compressed (a
			// proxy that decompressed would store them plain). librdkafka
			// 2.0 compresses only zstd here: from kfake's ApiVersions it
			// concludes "Broker does not support compression type gzip"
			// (snappy, lz4) and sends those batches plain, directly to
			// kfake as through the ambassador.
			for _, who := range []string{"-raw", "-kgo", "-kafkago", "-kcat"} {
				if who == "-kcat" && c.name != "zstd" {
					continue
				}
				if perClient[who][0] == 0 {
					t.Errorf("no %s batch of producer %s stored (compressed, plain: %v)", c.name, who[1:], perClient[who])
				}
			}
			out, err := e.kcat(ctx, "", "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k|%s\n")
			if err != nil {
				t.Fatal(err)
			}
			sameRecs(t, "kcat consuming "+c.name, parseLines(out), want)
			sameRecs(t, "kgo consuming "+c.name, e.consumeKgo(t, topic, len(want), nil), want)
		})
	}
}

// compressedBatch builds a v2 record batch of recs compressed with codec
// (by franz-go's own compressor), as a producer would send it.
func compressedBatch(t testing.TB, codec kgo.CompressionCodec, recs []rec) []byte {
	t.Helper()
	var body []byte
	for i, r := range recs {
		kr := kmsg.Record{OffsetDelta: int32(i), Key: []byte(r.key), Value: []byte(r.value)}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1)
		body = kr.AppendTo(body)
	}
	comp, err := kgo.DefaultCompressor(codec)
	if err != nil {
		t.Fatal(err)
	}
	out, typ := comp.Compress(new(bytes.Buffer), body)
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(typ), LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: out,
	}
	return sealBatch(b.AppendTo(nil))
}

// sealBatch sets a batch's length and CRC-32C.
func sealBatch(raw []byte) []byte {
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// fetchRaw fetches partition p of topic from offset 0: from its leader
// directly when addr is "", else from addr (the ambassador).
func (e *kafkaEnv) fetchRaw(t testing.TB, addr, topic string, p int32) []byte {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11 // topic names, no sessions needed
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.PartitionMaxBytes = 10 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if addr == "" {
		addr = e.brokers[e.fake.LeaderFor(topic, p)]
	}
	resp := raw(t, addr, req).(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s/%d from %s: %+v", topic, p, addr, resp)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("fetch %s/%d from %s: %v", topic, p, addr, kerr.ErrorForCode(code))
	}
	return resp.Topics[0].Partitions[0].RecordBatches
}

// batchInfo returns a v2 record batch's length, compression codec, and
// whether its CRC-32C holds.
func batchInfo(t testing.TB, b []byte) (int, int8, bool) {
	t.Helper()
	if len(b) < 61 || b[16] != 2 {
		t.Fatalf("not a v2 record batch")
	}
	n := 12 + int(binary.BigEndian.Uint32(b[8:]))
	attrs := binary.BigEndian.Uint16(b[21:])
	crc := binary.BigEndian.Uint32(b[17:])
	ok := crc32.Checksum(b[21:n], crc32.MakeTable(crc32.Castagnoli)) == crc
	return n, int8(attrs & 7), ok
}

func TestKafkaConsumerGroups(t *testing.T) {
	// KIP-848 members heartbeat every 500ms (Kafka's default is 5s)
	e := newKafkaEnv(t, kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "500"}))
	for _, mode := range []string{"classic", "kip848"} {
		t.Run("kgo-"+mode, func(t *testing.T) {
			topic := "grp-" + mode
			e.createTopic(topic, 6)
			group := "g-" + mode
			opts := []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300 * time.Millisecond)}
			if mode == "kip848" {
				opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
			} else {
				opts = append(opts, kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(6*time.Second))
			}
			requests := func(api string) float64 {
				return metricValue(t, e.srv, "ambassador_kafka_requests_total", map[string]string{"api": api})
			}
			joins, heartbeats := requests("JoinGroup"), requests("ConsumerGroupHeartbeat")
			groupRebalance(t, e, topic, group, opts)
			if os.Getenv("KAFKA_E2E_DIRECT") != "" {
				return
			}
			// the members spoke the protocol under test through the
			// ambassador (franz-go falls back to the classic protocol on
			// its own when KIP-848 is not offered)
			joined, beat := requests("JoinGroup")-joins, requests("ConsumerGroupHeartbeat")-heartbeats
			if mode == "kip848" && (beat == 0 || joined != 0) {
				t.Errorf("KIP-848 group: %v ConsumerGroupHeartbeat and %v JoinGroup requests through the ambassador, want some and none", beat, joined)
			}
			if mode == "classic" && (joined == 0 || beat != 0) {
				t.Errorf("classic group: %v JoinGroup and %v ConsumerGroupHeartbeat requests through the ambassador, want some and none", joined, beat)
			}
		})
	}

	t.Run("kcat-classic", func(t *testing.T) {
		topic, group := "grp-kcat", "g-kcat"
		e.createTopic(topic, 6)
		want := makeRecs("kcatgrp", 300)
		produceKgo(t, e.client(), topic, want)
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		// two librdkafka members of one group, each until its partitions end
		var outs [2]string
		var errs [2]error
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				outs[i], errs[i] = e.kcat(ctx, "", "-G", group, "-X", "auto.offset.reset=earliest",
					"-X", "session.timeout.ms=6000", "-e", "-q", "-f", "%k|%s\n", topic)
			})
		}
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil {
				t.Fatalf("member %d: %v", i, errs[i])
			}
		}
		got := append(parseLines(outs[0]), parseLines(outs[1])...)
		// A member may re-read a partition it was handed after the other
		// finished it, before the commit; the union must be complete.
		seen := map[rec]bool{}
		for _, r := range got {
			seen[r] = true
		}
		for _, r := range want {
			if !seen[r] {
				t.Fatalf("record %v consumed by no member (got %d, %d)", r, len(parseLines(outs[0])), len(parseLines(outs[1])))
			}
		}
		// the group is described through the ambassador
		adm := kadm.NewClient(e.client())
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		lag, err := adm.Lag(dctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if gl := lag[group]; gl.Error() != nil || gl.Lag.Total() != 0 {
			t.Errorf("group %s lag %d (err %v), want 0 after both members consumed and committed", group, gl.Lag.Total(), gl.Error())
		}
		// and the commits cover every partition: no lag above could also
		// mean no commit at all
		offs, err := adm.FetchOffsets(dctx, group)
		if err != nil {
			t.Fatal(err)
		}
		var committed int64
		parts := 0
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil {
				committed += o.At
				parts++
			}
		})
		if parts != 6 || committed != int64(len(want)) {
			t.Errorf("group %s committed %d records over %d partitions, want %d over 6", group, committed, parts, len(want))
		}
	})
}

// groupRebalance runs two members of a group, checks both get partitions
// and together consume everything, then closes one and checks the other
// takes over its partitions and consumes what follows.
func groupRebalance(t *testing.T, e *kafkaEnv, topic, group string, opts []kgo.Opt) {
	if os.Getenv("KAFKA_E2E_DIRECT") != "" { // the same against kfake directly
		opts = append(opts, kgo.SeedBrokers(e.brokers...))
	}
	var mu sync.Mutex
	assigned := map[int]map[int32]bool{0: {}, 1: {}}
	seen := map[string]int{}
	var members [2]*kgo.Client
	for i := range members {
		o := append(slices.Clone(opts),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				for _, p := range m[topic] {
					assigned[i][p] = true
				}
				mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				for _, p := range m[topic] {
					delete(assigned[i], p)
				}
				mu.Unlock()
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				for _, p := range m[topic] {
					delete(assigned[i], p)
				}
				mu.Unlock()
			}))
		members[i] = e.client(o...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	polling := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	for i, m := range members {
		wg.Go(func() {
			defer close(polling[i])
			for ctx.Err() == nil {
				fs := m.PollFetches(ctx)
				if errors.Is(fs.Err0(), kgo.ErrClientClosed) {
					return
				}
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
				mu.Unlock()
			}
		})
	}
	producer := e.client()
	first := makeRecs(group+"-a", 600)
	produceKgo(t, producer, topic, first)
	waitSeen := func(recs []rec, what string) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			missing := 0
			for _, r := range recs {
				if seen[r.value] == 0 {
					missing++
				}
			}
			mu.Unlock()
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d records never consumed", what, missing, len(recs))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSeen(first, "two members")
	e.eventually(20*time.Second, "both members own partitions", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(assigned[0]) > 0 && len(assigned[1]) > 0 && len(assigned[0])+len(assigned[1]) == 6
	})
	// member 0 leaves; member 1 must take all six partitions
	members[0].Close()
	<-polling[0]
	e.eventually(30*time.Second, "the remaining member owns every partition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(assigned[1]) == 6
	})
	second := makeRecs(group+"-b", 300)
	produceKgo(t, producer, topic, second)
	waitSeen(second, "after the rebalance")

	// The remaining member commits every partition up to its end (it may
	// re-read what the member that left had read but not committed).
	adm := kadm.NewClient(e.client())
	want := int64(len(first) + len(second))
	var committed int64
	var detail []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := members[1].CommitUncommittedOffsets(dctx); err != nil {
			t.Logf("commit: %v", err)
		}
		offs, err := adm.FetchOffsets(dctx, group)
		dcancel()
		if err != nil {
			t.Fatal(err)
		}
		committed, detail = 0, nil
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil {
				t.Errorf("offset fetch %s/%d: %v", o.Topic, o.Partition, o.Err)
			}
			committed += o.At
			detail = append(detail, fmt.Sprintf("%d:%d", o.Partition, o.At))
		})
		if committed == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("committed offsets sum to %d, want %d: %v", committed, want, detail)
}

func TestKafkaTransactions(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("txn", 6)
	cl := e.client(kgo.TransactionalID("amb-txn-1"), kgo.DefaultProduceTopic("txn"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var committed, all []rec
	for i, commit := range []bool{true, false, true, false} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		recs := makeRecs(fmt.Sprintf("txn%d-%v", i, commit), 40)
		for _, r := range recs {
			cl.Produce(ctx, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit=%v): %v", commit, err)
		}
		if commit {
			committed = append(committed, recs...)
		}
		all = append(all, recs...)
	}
	sameRecs(t, "read_committed through the ambassador",
		e.consumeKgo(t, "txn", len(committed), nil, kgo.FetchIsolationLevel(kgo.ReadCommitted())), committed)
	// read_uncommitted sees the aborted ones too
	sameRecs(t, "read_uncommitted through the ambassador",
		e.consumeKgo(t, "txn", len(all), nil, kgo.FetchIsolationLevel(kgo.ReadUncommitted())), all)
	// librdkafka's read_committed agrees
	out, err := e.kcat(ctx, "", "-C", "-t", "txn", "-o", "beginning", "-e", "-q", "-f", "%k|%s\n",
		"-X", "isolation.level=read_committed")
	if err != nil {
		t.Fatal(err)
	}
	sameRecs(t, "kcat read_committed", parseLines(out), committed)

	t.Run("consume-transform-produce", func(t *testing.T) {
		// A group transact session: offsets committed inside the
		// transaction (AddOffsetsToTxn, TxnOffsetCommit).
		e.createTopic("txn-in", 3)
		e.createTopic("txn-out", 3)
		in := makeRecs("ctp", 90)
		produceKgo(t, e.client(), "txn-in", in)
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(e.addr), kgo.TransactionalID("amb-ctp"),
			kgo.ConsumerGroup("ctp-group"), kgo.ConsumeTopics("txn-in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("txn-out"), kgo.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		moved := 0
		for moved < len(in) && ctx.Err() == nil {
			fs := sess.PollFetches(ctx)
			if err := sess.Begin(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				moved++
				sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
			})
			if _, err := sess.End(ctx, kgo.TryCommit); err != nil {
				t.Fatalf("end: %v", err)
			}
		}
		var want []rec
		for _, r := range in {
			want = append(want, rec{r.key, "out-" + r.value})
		}
		sameRecs(t, "transformed", e.consumeKgo(t, "txn-out", len(want), nil, kgo.FetchIsolationLevel(kgo.ReadCommitted())), want)
		offs, err := kadm.NewClient(e.client()).FetchOffsets(ctx, "ctp-group")
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		if sum != int64(len(in)) {
			t.Errorf("offsets committed in the transactions sum to %d, want %d", sum, len(in))
		}
	})
}

// TestKafkaLeadersMoveUnderLoad produces without pause through the
// ambassador while kfake moves partition leaders, then checks with fresh
// readers that every acknowledged record is there exactly once.
func TestKafkaLeadersMoveUnderLoad(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("moves", 6)
	cl := e.client(kgo.DefaultProduceTopic("moves"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var acked []rec
	var failed int
	var firstErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the leader mover
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			if i%2 == 0 {
				e.fake.ShufflePartitionLeaders()
			} else {
				_ = e.fake.MoveTopicPartition("moves", rng.Int32N(6), rng.Int32N(3))
			}
		}
	})
	deadline := time.Now().Add(3 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		r := rec{fmt.Sprintf("k%d", n%23), fmt.Sprintf("move-%d", n)}
		n++
		cl.Produce(ctx, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value)}, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if failed == 0 {
					firstErr = err
				}
				failed++
				return
			}
			acked = append(acked, r)
		})
		if n%200 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	notLeader := metricValue(t, e.srv, "ambassador_kafka_partition_errors_total", map[string]string{"api": "Produce", "error": kerr.NotLeaderForPartition.Message})
	t.Logf("%d records produced during leader moves, %d acknowledged, %d failed; the ambassador relayed %v NOT_LEADER_OR_FOLLOWER", n, len(acked), failed, notLeader)
	if notLeader == 0 {
		t.Fatalf("no produce met a moved leader: the test did not exercise re-routing")
	}
	// every error the moves cause is retriable (NOT_LEADER_OR_FOLLOWER and
	// the like), and the producer retries: none may fail for good
	if failed != 0 {
		t.Errorf("%d of %d records failed, the first with: %v", failed, n, firstErr)
	}
	// every acknowledged record, exactly once: read back directly and
	// through the ambassador (failed ones may or may not be there)
	total := len(acked) + failed
	for _, via := range []struct {
		name  string
		seeds []string
	}{{"backend", e.brokers}, {"ambassador", nil}} {
		got := e.consumeAtLeast(t, "moves", len(acked), total, via.seeds)
		count := map[rec]int{}
		for _, r := range got {
			count[r]++
		}
		for _, r := range acked {
			if count[r] != 1 {
				t.Fatalf("via %s: acknowledged record %v read %d times", via.name, r, count[r])
			}
		}
	}
}

// consumeAtLeast reads topic from the start until at least min records
// came and nothing more arrives (at most max).
func (e *kafkaEnv) consumeAtLeast(t testing.TB, topic string, min, max int, seeds []string) []rec {
	t.Helper()
	if seeds == nil {
		seeds = []string{e.addr}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []rec
	deadline := time.Now().Add(30 * time.Second)
	quiet := time.Time{}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		before := len(out)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, rec{string(r.Key), string(r.Value)}) })
		if len(out) > max {
			t.Fatalf("read %d records, more than the %d produced", len(out), max)
		}
		if len(out) >= min && len(out) == before {
			if quiet.IsZero() {
				quiet = time.Now()
			} else if time.Since(quiet) > time.Second {
				return out
			}
		} else {
			quiet = time.Time{}
		}
	}
	t.Fatalf("read %d records of %s, want at least %d", len(out), topic, min)
	return nil
}

func TestKafkaBrokerRemovedAndReadded(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("churn", 6)
	cl := e.client(kgo.DefaultProduceTopic("churn"))
	nodeAddrs := func() []string {
		var out []string
		for _, c := range e.srv.Nodes().Clusters {
			if c.Name == "kafka" {
				for _, n := range c.Nodes {
					out = append(out, n.Addr)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	var all []rec
	step := func(name string) {
		recs := makeRecs(name, 120)
		produceKgo(t, cl, "churn", recs)
		all = append(all, recs...)
		sameRecs(t, name, e.consumeKgo(t, "churn", len(all), nil), all)
	}
	step("before")

	removed := e.brokers[2]
	if err := e.fake.RemoveNode(2); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "the removed broker leaves the node set", func() bool {
		return !slices.Contains(nodeAddrs(), removed) && len(nodeAddrs()) == 2
	})
	step("removed")

	_, port, _ := net.SplitHostPort(removed)
	p, _ := strconv.Atoi(port)
	id, newPort, err := e.fake.AddNode(2, p)
	if err != nil {
		t.Fatal(err)
	}
	readded := net.JoinHostPort("127.0.0.1", strconv.Itoa(newPort))
	e.eventually(10*time.Second, "the re-added broker joins the node set", func() bool {
		return slices.Contains(nodeAddrs(), readded) && len(nodeAddrs()) == 3
	})
	// put leaders on the re-added broker and use them
	for q := int32(0); q < 6; q += 2 {
		if err := e.fake.MoveTopicPartition("churn", q, id); err != nil {
			t.Fatal(err)
		}
	}
	step("readded")
	e.eventually(5*time.Second, "the re-added broker probed up", func() bool {
		for _, c := range e.srv.Nodes().Clusters {
			for _, n := range c.Nodes {
				if n.Addr == readded {
					return n.State == "up" && !n.LastProbe.IsZero()
				}
			}
		}
		return false
	})
}

// TestKafkaNoBackendLeaks sends the requests whose responses name brokers
// straight to the ambassador and checks that only the ambassador appears.
func TestKafkaNoBackendLeaks(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("leaks", 6)
	host, port, _ := net.SplitHostPort(e.addr)
	check := func(resp kmsg.Response) {
		t.Helper()
		if leak := e.backendLeak(resp); leak != "" {
			t.Errorf("%s leaks a backend broker: %s", kmsg.NameForKey(resp.Key()), leak)
		}
	}
	topic := "leaks"

	for _, v := range []int16{1, 9, 12, 13} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &topic
		req.Topics = append(req.Topics, rt)
		resp := raw(t, e.addr, req).(*kmsg.MetadataResponse)
		check(resp)
		if len(resp.Brokers) != 1 || resp.Brokers[0].Host != host || strconv.Itoa(int(resp.Brokers[0].Port)) != port {
			t.Errorf("metadata v%d brokers %+v", v, resp.Brokers)
		}
	}
	for _, v := range []int16{0, 3, 4, 6} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = v
		req.CoordinatorKey = "leak-group"
		req.CoordinatorKeys = []string{"leak-group", "another-group"}
		resp := raw(t, e.addr, req).(*kmsg.FindCoordinatorResponse)
		if v >= 4 {
			resp.NodeID = -1 // a v0-v3 field: not on the wire, zero when decoded
		}
		check(resp)
		if v < 4 && (resp.ErrorCode != 0 || resp.NodeID != ambID || resp.Host != host) {
			t.Errorf("FindCoordinator v%d: %+v", v, resp)
		}
		if v >= 4 && (len(resp.Coordinators) != 2 || resp.Coordinators[1].NodeID != ambID || resp.Coordinators[1].Key != "another-group") {
			t.Errorf("FindCoordinator v%d: %+v", v, resp.Coordinators)
		}
	}
	{
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = 1
		resp := raw(t, e.addr, req).(*kmsg.DescribeClusterResponse)
		check(resp)
		if resp.ControllerID != ambID || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != ambID || resp.ClusterID == "" {
			t.Errorf("DescribeCluster %+v", resp)
		}
	}
	{
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = topic
		req.Topics = append(req.Topics, rt)
		req.ResponsePartitionLimit = 100
		resp := raw(t, e.addr, req).(*kmsg.DescribeTopicPartitionsResponse)
		check(resp)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 6 {
			t.Errorf("DescribeTopicPartitions %+v", resp.Topics)
		}
	}
	{
		req := kmsg.NewPtrDescribeConfigsRequest()
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeBroker
		res.ResourceName = strconv.Itoa(int(ambID))
		req.Resources = append(req.Resources, res)
		resp := raw(t, e.addr, req).(*kmsg.DescribeConfigsResponse)
		check(resp)
		if len(resp.Resources) != 1 || resp.Resources[0].ResourceName != strconv.Itoa(int(ambID)) || resp.Resources[0].ErrorCode != 0 {
			t.Errorf("DescribeConfigs of the ambassador broker: %+v", resp.Resources)
		}
	}

	// KIP-951: a produce that reaches a former leader is answered
	// NOT_LEADER_OR_FOLLOWER with the new leader and its endpoint: both
	// must be the ambassador. Warm the ambassador's routing, then move the
	// partition behind its back.
	produceKgo(t, e.client(), topic, makeRecs("warm", 30))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	move := func() {
		old := e.fake.LeaderFor(topic, 0)
		if err := e.fake.MoveTopicPartition(topic, 0, (old+1)%3); err != nil {
			t.Fatal(err)
		}
	}
	move()
	for _, v := range []int16{10, 12} {
		req := kmsg.NewPtrProduceRequest()
		req.Version = v
		req.Acks = -1
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 0
		rp.Records = oneBatch()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := rawOn(t, c, req).(*kmsg.ProduceResponse)
		check(resp)
		p := resp.Topics[0].Partitions[0]
		// the periodic metadata refresh (1 s here) may have re-routed the
		// partition between the move and the produce: move it again
		for try := 0; v == 10 && p.ErrorCode == 0 && try < 5; try++ {
			move()
			resp = rawOn(t, c, req).(*kmsg.ProduceResponse)
			check(resp)
			p = resp.Topics[0].Partitions[0]
		}
		if v == 10 {
			if p.ErrorCode != kerr.NotLeaderForPartition.Code {
				t.Fatalf("produce to the moved partition: %v, want NOT_LEADER_OR_FOLLOWER from the old leader", kerr.ErrorForCode(p.ErrorCode))
			}
			if p.CurrentLeader.LeaderID != ambID || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != ambID ||
				resp.Brokers[0].Host != host || strconv.Itoa(int(resp.Brokers[0].Port)) != port {
				t.Errorf("KIP-951 leader hint %+v endpoints %+v, want the ambassador", p.CurrentLeader, resp.Brokers)
			}
		}
		if v == 12 { // by now the ambassador has re-routed
			e.eventually(5*time.Second, "produce re-routed to the new leader", func() bool {
				resp := rawOn(t, c, req).(*kmsg.ProduceResponse)
				check(resp)
				return resp.Topics[0].Partitions[0].ErrorCode == 0
			})
		}
	}
}

// oneBatch is an uncompressed v2 record batch of one record.
func oneBatch() []byte {
	rec := kmsg.Record{Key: []byte("k"), Value: []byte("raw")}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil),
	}
	return sealBatch(b.AppendTo(nil))
}

// TestKafkaFetchWaitAcrossBrokers: a fetch spanning three brokers is
// answered as soon as one of them has data, and an empty one waits out
// MaxWait.
func TestKafkaFetchWaitAcrossBrokers(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("wait", 3)
	topic := "wait"
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	raw(t, e.addr, mreq) // as a client does first

	// empty: a raw fetch with MaxWait 600ms waits about that long
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID = -1
	req.MaxWaitMillis = 600
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "wait"
	for p := range int32(3) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp := raw(t, e.addr, req).(*kmsg.FetchResponse)
	took := time.Since(start)
	if took < 450*time.Millisecond || took > 3*time.Second {
		t.Errorf("empty fetch over 3 brokers answered after %v, want about its MaxWait of 600ms", took)
	}
	if resp.SessionID != 0 || resp.ErrorCode != 0 {
		t.Errorf("session %d error %d, want a declined session", resp.SessionID, resp.ErrorCode)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 || len(rp.RecordBatches) != 0 {
				t.Errorf("empty fetch of partition %d: error %v, %d bytes", rp.Partition, kerr.ErrorForCode(rp.ErrorCode), len(rp.RecordBatches))
			}
		}
	}
	check := e.backendLeak(resp)
	if check != "" {
		t.Error(check)
	}

	// data on one broker: a consumer with a 5s MaxWait gets it at once
	cons := e.client(kgo.ConsumeTopics("wait"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan time.Time, 10)
	go func() {
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			for range fs.NumRecords() {
				got <- time.Now()
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond) // the consumer is long-polling all three brokers
	prod := e.client()
	// Warm-up: a record on each partition, consumed, so that the
	// consumer's fetches name every partition (one whose start offset
	// came late would wait out a fetch that lacks it: the client's own
	// pacing, not the ambassador's).
	for p := range int32(3) {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "wait", Partition: p, Value: []byte("warm")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case <-got:
		case <-time.After(15 * time.Second):
			t.Fatal("the warm-up records were not consumed")
		}
	}
	time.Sleep(300 * time.Millisecond) // long-polling again
	for p := range int32(3) {
		sent := time.Now()
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "wait", Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-got:
			if lat := at.Sub(sent); lat > 1500*time.Millisecond {
				t.Errorf("record on partition %d reached the consumer after %v, with MaxWait 5s: the fetch waited for the other brokers", p, lat)
			}
		case <-time.After(4 * time.Second):
			t.Fatalf("record on partition %d not consumed within 4s (MaxWait 5s)", p)
		}
	}
}

// TestKafkaBadRequests: garbage and oversized requests close the
// connection, with the server serving others as before.
func TestKafkaBadRequests(t *testing.T) {
	e := newKafkaEnv(t)
	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.ReadAll(c)
		var ne net.Error
		return err == nil || !(errors.As(err, &ne) && ne.Timeout())
	}
	alive := func() {
		t.Helper()
		resp := raw(t, e.addr, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) < 20 {
			t.Fatalf("ApiVersions after a bad request: %+v", resp)
		}
	}
	t.Run("garbage", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		junk := []byte{0, 0, 0, 12, 0x7f, 0x01, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
		_, _ = c.Write(junk)
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("connection not closed after an unknown API key")
		}
		alive()
		// counted under one label, whatever the key: a client cannot mint
		// metric series
		if v := metricValue(t, e.srv, "ambassador_kafka_errors_total", map[string]string{"api": "unknown"}); v < 1 {
			t.Errorf("unknown API key not counted under api=unknown (%v)", v)
		}
		if v := metricValue(t, e.srv, "ambassador_kafka_errors_total", map[string]string{"api": "key32513"}); v != 0 {
			t.Errorf("unknown API key counted under its own label")
		}
	})
	t.Run("malformed-body", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame := wire.AppendRequest(nil, 1, nil, &kmsg.ProduceRequest{Version: 9, Acks: -1, TimeoutMillis: 1000,
			Topics: []kmsg.ProduceRequestTopic{{Topic: "x", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: oneBatch()}}}}})
		frame = frame[:len(frame)-30] // cut the body short
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		_, _ = c.Write(frame)
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("connection not closed after a malformed request")
		}
		alive()
	})
	t.Run("oversized", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], 200<<20) // 200 MiB > 100 MiB default
		_, _ = c.Write(append(b[:], 0, 18, 0, 0))
		start := time.Now()
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("connection not closed after an oversized request")
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("took %v to refuse the oversized request", time.Since(start))
		}
		e.eventually(2*time.Second, "too_large close counted", func() bool {
			return metricValue(t, e.srv, "ambassador_frontend_connections_closed_total", map[string]string{"frontend": "kafka", "reason": "too_large"}) >= 1
		})
		alive()
	})
	t.Run("unsupported-apiversions", func(t *testing.T) {
		// a version newer than anyone knows: a v0 answer with
		// UNSUPPORTED_VERSION and our ApiVersions range
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame := []byte{0, 0, 0, 0, 0, 18, 0, 99, 0, 0, 0, 5, 0, 0, 0} // header v2: client id, no tags
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		_, _ = c.Write(frame)
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, err := wire.ReadFrame(bufio.NewReader(c), 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := wire.DecodeResponse(18, 0, got)
		if err != nil {
			t.Fatal(err)
		}
		av := resp.(*kmsg.ApiVersionsResponse)
		if av.ErrorCode != kerr.UnsupportedVersion.Code || len(av.ApiKeys) != 1 || av.ApiKeys[0].ApiKey != 18 || av.ApiKeys[0].MaxVersion < 3 {
			t.Fatalf("ApiVersions v99 answer %+v", av)
		}
	})
	t.Run("unhandled-api", func(t *testing.T) {
		// DescribeLogDirs is per broker: not handled, answered with an error
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = 3
		resp := raw(t, e.addr, req).(*kmsg.DescribeLogDirsResponse)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("DescribeLogDirs error %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(resp.ErrorCode))
		}
		alive()
	})
}

// TestKafkaApiVersions: what the ambassador advertises is what it handles
// intersected with what the brokers support.
func TestKafkaApiVersions(t *testing.T) {
	e := newKafkaEnv(t)
	amb := raw(t, e.addr, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	be := raw(t, e.brokers[0], kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	beKeys := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range be.ApiKeys {
		beKeys[k.ApiKey] = k
	}
	seen := map[int16]bool{}
	for _, k := range amb.ApiKeys {
		seen[k.ApiKey] = true
		if k.ApiKey == 18 {
			continue
		}
		b, ok := beKeys[k.ApiKey]
		if !ok || k.MaxVersion > b.MaxVersion || k.MinVersion < b.MinVersion {
			t.Errorf("%s advertised v%d-%d, backend v%d-%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, b.MinVersion, b.MaxVersion)
		}
		if kr := kmsg.RequestForKey(k.ApiKey); k.MaxVersion > kr.MaxVersion() {
			t.Errorf("%s advertised beyond kmsg's v%d", kmsg.NameForKey(k.ApiKey), kr.MaxVersion())
		}
	}
	for _, key := range []int16{0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 28, 32, 42, 47, 60, 68, 69} {
		if !seen[key] {
			t.Errorf("%s not advertised", kmsg.NameForKey(key))
		}
	}
	for _, key := range []int16{4, 5, 6, 7, 17, 27, 35, 36, 45, 46, 52, 76, 78} {
		if seen[key] {
			t.Errorf("%s advertised, but the ambassador does not handle it", kmsg.NameForKey(key))
		}
	}

	t.Run("capped-backend", func(t *testing.T) {
		// brokers that stop at older versions cap what clients are offered
		v := kversionCapped()
		e2 := newKafkaEnv(t, kfake.MaxVersions(v))
		amb := raw(t, e2.addr, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
		for _, k := range amb.ApiKeys {
			max, ok := v.LookupMaxKeyVersion(k.ApiKey)
			switch {
			case k.ApiKey == 18:
			case !ok:
				t.Errorf("%s advertised, but the capped brokers lack it", kmsg.NameForKey(k.ApiKey))
			case k.MaxVersion > max:
				t.Errorf("%s advertised up to v%d over brokers capped at v%d", kmsg.NameForKey(k.ApiKey), k.MaxVersion, max)
			}
		}
		// and a capped cluster still works end to end
		cl := e2.client(kgo.DefaultProduceTopic("capped"), kgo.AllowAutoTopicCreation())
		want := makeRecs("capped", 50)
		produceKgo(t, cl, "capped", want)
		sameRecs(t, "capped cluster", e2.consumeKgo(t, "capped", len(want), nil), want)
	})
}

// metricValue sums a metric's samples matching labels.
func metricValue(t testing.TB, srv *server.Server, name string, labels map[string]string) float64 {
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// kversionCapped is the API versions of Kafka 3.0: older than what kfake
// and the ambassador handle.
func kversionCapped() *kversion.Versions { return kversion.V3_0_0() }

// TestKafkaLimitsMetricsReload: the idle timeout closes idle clients but
// not one waiting on a long poll; the metrics count what went through; a
// reload applies a new advertised address without dropping clients.
func TestKafkaLimitsMetricsReload(t *testing.T) {
	e2 := newKafkaEnvWith(t, map[string]string{"IDLE_TIMEOUT": "400ms"}, kfake.SeedTopics(3, "limits"))

	// an idle client is closed
	c, err := net.Dial("tcp", e2.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rawOn(t, c, kmsg.NewPtrApiVersionsRequest())
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from an idle connection")
	}
	if idle := time.Since(start); idle < 300*time.Millisecond || idle > 3*time.Second {
		t.Errorf("idle connection closed after %v with a 400ms idle timeout", idle)
	}

	// a consumer long-polling for longer than the idle timeout is not idle:
	// its fetch connection lives through the wait (a closed one would be
	// redialled by the client, and the record would still arrive)
	var hooks connHooks
	cons := e2.client(kgo.ConsumeTopics("limits"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(2*time.Second), kgo.WithHooks(&hooks))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			if fs.NumRecords() > 0 {
				got <- nil
				return
			}
		}
	}()
	e2.eventually(5*time.Second, "the consumer's first fetch", func() bool { return hooks.fetches.Load() > 0 })
	dials := hooks.connects.Load()
	time.Sleep(2500 * time.Millisecond) // past the idle timeout, inside a long poll
	if err := e2.client().ProduceSync(ctx, &kgo.Record{Topic: "limits", Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(6 * time.Second):
		t.Fatal("the long-polling consumer did not get the record")
	}
	if n := hooks.connects.Load() - dials; n != 0 {
		t.Errorf("the long-polling consumer dialled %d times during its polls: its connection was closed as idle", n)
	}

	// metrics
	for _, m := range []struct {
		name   string
		labels map[string]string
	}{
		{"ambassador_kafka_requests_total", map[string]string{"api": "ApiVersions"}},
		{"ambassador_kafka_requests_total", map[string]string{"api": "Produce"}},
		{"ambassador_kafka_requests_total", map[string]string{"api": "Fetch"}},
		{"ambassador_kafka_backend_requests_total", map[string]string{"api": "Fetch"}},
		{"ambassador_kafka_bytes_total", map[string]string{"side": "client", "direction": "in"}},
		{"ambassador_kafka_bytes_total", map[string]string{"side": "backend", "direction": "out"}},
		{"ambassador_kafka_backend_brokers", nil},
		{"ambassador_kafka_metadata_refreshes_total", map[string]string{"result": "success"}},
		{"ambassador_frontend_connections_closed_total", map[string]string{"frontend": "kafka", "reason": "idle_timeout"}},
	} {
		if v := metricValue(t, e2.srv, m.name, m.labels); v <= 0 {
			t.Errorf("%s%v = %v, want > 0", m.name, m.labels, v)
		}
	}
	if n := histogramCount(t, e2.srv, "ambassador_kafka_request_duration_seconds", "Produce"); n == 0 {
		t.Error("no Produce latency observed")
	}

	// reload: a new advertised address takes effect for the next metadata
	_, port, _ := net.SplitHostPort(e2.addr)
	e2.env["KAFKA_ADVERTISED_ADDR"] = "localhost:" + port
	if err := e2.srv.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	md := raw(t, e2.addr, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(md.Brokers) != 1 || md.Brokers[0].Host != "localhost" {
		t.Errorf("after reload, metadata brokers %+v, want localhost", md.Brokers)
	}
	// the node set stays the discovered brokers
	e2.eventually(3*time.Second, "3 brokers after reload", func() bool {
		for _, cl := range e2.srv.Nodes().Clusters {
			if cl.Name == "kafka" {
				return len(cl.Nodes) == 3
			}
		}
		return false
	})
	// the consumer connection survived the reload
	if err := e2.client().ProduceSync(ctx, &kgo.Record{Topic: "limits", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cons.PollFetches(ctx)
	if fs.NumRecords() == 0 {
		t.Errorf("consumer after reload: %v", fs.Err0())
	}
	if n := hooks.connects.Load() - dials; n != 0 {
		t.Errorf("the consumer dialled %d times across the reload: its connection was closed", n)
	}
}

// TestKafkaIdleCountsFromLastResponse: the idle timeout runs from the
// last request or the last response, whichever came later; a client that
// sends its next request soon after a long poll ended is not idle, however
// long the poll took.
func TestKafkaIdleCountsFromLastResponse(t *testing.T) {
	const idle = 800 * time.Millisecond
	e := newKafkaEnvWith(t, map[string]string{"IDLE_TIMEOUT": idle.String()}, kfake.SeedTopics(1, "idle"))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rawOn(t, c, kmsg.NewPtrApiVersionsRequest())
	// A long poll on an empty partition that ends just before the
	// ambassador's second idle check (at 2 x idle after the request, while
	// the poll keeps the connection busy).
	req := fetchRequest("idle", int32(idle.Milliseconds()*19/10), map[int32]int64{0: 0})
	for range 2 {
		start := time.Now()
		resp := rawOn(t, c, req).(*kmsg.FetchResponse)
		if waited := time.Since(start); waited < idle || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("long poll answered after %v: %+v", waited, resp.Topics)
		}
		// half the idle timeout after the response: still a live client
		time.Sleep(idle / 2)
	}
	rawOn(t, c, kmsg.NewPtrApiVersionsRequest())
	// and once really idle, the connection is closed
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from an idle connection")
	}
	if waited := time.Since(start); waited > 3*idle {
		t.Errorf("idle connection closed after %v, idle timeout %v", waited, idle)
	}
}

// TestKafkaFetchNoStarvation: a partition added to a consumer's fetches
// while another partition of the same broker streams (its read-ahead always
// in flight) is fetched all the same.
func TestKafkaFetchNoStarvation(t *testing.T) {
	for _, readAhead := range []string{"true", "false"} {
		t.Run("read-ahead="+readAhead, func(t *testing.T) { fetchNoStarvation(t, readAhead) })
	}
}

func fetchNoStarvation(t *testing.T, readAhead string) {
	e := newKafkaEnvWith(t, map[string]string{"KAFKA_FETCH_READ_AHEAD": readAhead})
	topicWithLeaders(t, e, "starve", 0, 0)
	prod := e.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.SeedBrokers(e.brokers...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 5 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "starve", Partition: 1, Value: []byte("p1")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { // partition 0 streams
		for ctx.Err() == nil {
			_ = prod.ProduceSync(ctx, &kgo.Record{Topic: "starve", Partition: 0, Value: []byte("p0")}).FirstErr()
			time.Sleep(100 * time.Millisecond)
		}
	})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	off := map[int32]int64{}
	got1 := 0
	for i := range 20 {
		parts := map[int32]int64{0: off[0]}
		if i >= 5 { // partition 1 joins once partition 0's read-ahead runs
			parts[1] = off[1]
		}
		req := fetchRequest("starve", 2000, parts)
		resp := rawOn(t, c, req).(*kmsg.FetchResponse)
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				if n := batchesEnd(p.RecordBatches); n > 0 {
					off[p.Partition] = n
					if p.Partition == 1 {
						got1++
					}
				}
			}
		}
	}
	if got1 == 0 || off[1] != 5 {
		t.Errorf("partition 1 (5 records waiting) fetched %d times, up to offset %d, in 15 fetches while partition 0 streamed", got1, off[1])
	}
}

// TestKafkaFetchAdoptingReadAhead: a fetch that finds a read-ahead of
// other partitions of its broker in flight is answered with its own
// partitions' data, not empty. It may wait out that read-ahead's long poll
// (within its own MaxWait): on the one fetch connection per broker a real
// broker takes the next request only after it.
func TestKafkaFetchAdoptingReadAhead(t *testing.T) {
	e := newKafkaEnv(t)
	topicWithLeaders(t, e, "adopt", 0, 0)
	prod := e.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.SeedBrokers(e.brokers...))
	for p := range int32(2) {
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "adopt", Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fetch := func(p int32) (*kmsg.FetchResponse, time.Duration) {
		req := fetchRequest("adopt", 2000, map[int32]int64{p: 0})
		start := time.Now()
		return rawOn(t, c, req).(*kmsg.FetchResponse), time.Since(start)
	}
	records := func(resp *kmsg.FetchResponse, p int32) int {
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.Partition == p {
					return len(rp.RecordBatches)
				}
			}
		}
		return 0
	}
	// partition 0's data starts a read-ahead of partition 0 (long-polling:
	// nothing more comes)
	if resp, _ := fetch(0); records(resp, 0) == 0 {
		t.Fatal("partition 0: no records")
	}
	// partition 1 has a record: answered with it, within its MaxWait
	resp, took := fetch(1)
	if records(resp, 1) == 0 || took > 3*time.Second {
		t.Errorf("partition 1 behind a read-ahead of partition 0: %d bytes of records after %v, want its record within its MaxWait", records(resp, 1), took)
	}
}

// TestKafkaPipelinedFetchesWait: two fetches in flight on one connection
// for partitions of one broker each wait their MaxWait; neither answers
// the other empty.
func TestKafkaPipelinedFetchesWait(t *testing.T) {
	e := newKafkaEnv(t)
	topicWithLeaders(t, e, "pipefetch", 0, 0)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	id := "e2e-pipe"
	fetch := func(p int32) []byte {
		req := fetchRequest("pipefetch", 1000, map[int32]int64{p: 0})
		return wire.AppendRequest(nil, p, &id, req) // correlation id = partition
	}
	if _, err := c.Write(append(fetch(0), fetch(1)...)); err != nil {
		t.Fatal(err)
	}
	n := 0
	end := time.Now().Add(3 * time.Second)
	_ = c.SetReadDeadline(end)
	for {
		frame, err := wire.ReadFrame(br, 1<<30, nil)
		if err != nil {
			break
		}
		corr, _ := wire.ResponseCorrelation(frame)
		n++
		if _, err := c.Write(fetch(corr)); err != nil { // asked again at once, as consumers do
			t.Fatal(err)
		}
	}
	// each of the two waits 1 s per answer: about 6 answers in 3 s
	if n > 12 {
		t.Errorf("%d fetch answers in 3 s with two fetches of MaxWait 1 s on an empty topic: answered early", n)
	}
	if n < 2 {
		t.Errorf("%d fetch answers in 3 s with two fetches of MaxWait 1 s", n)
	}
}

// TestKafkaAcks0NotLostOnClose: acks=0 produce requests the ambassador has
// read reach the broker even when the client hangs up right after sending
// them (large ones wait for a backend writer goroutine).
func TestKafkaAcks0NotLostOnClose(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("acks0", 1)
	// one acknowledged record first: the ambassador routes the topic
	produceKgo(t, e.client(), "acks0", makeRecs("first", 1))
	rec := kmsg.Record{Key: []byte("k"), Value: make([]byte, 700<<10)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	now := time.Now().UnixMilli()
	batch := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 0
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "acks0"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = sealBatch(batch.AppendTo(nil))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	id := "e2e-acks0"
	frame := wire.AppendRequest(nil, 1, &id, req)
	const n = 20
	for range n {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	adm := kadm.NewClient(e.direct)
	var end int64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && end != n {
		time.Sleep(50 * time.Millisecond)
		ends, err := adm.ListEndOffsets(context.Background(), "acks0")
		if err != nil {
			continue
		}
		o, _ := ends.Lookup("acks0", 0)
		end = o.Offset - 1
	}
	if end != n {
		t.Errorf("%d of %d acks=0 produce requests stored", end, n)
	}

	// and at shutdown: every acks=0 request the ambassador read is stored
	before := metricValue(t, e.srv, "ambassador_kafka_requests_total", map[string]string{"api": "Produce"})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for range 60 {
			if _, err := c.Write(frame); err != nil {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	e.stop()
	c.Close()
	<-stopped
	read := int64(metricValue(t, e.srv, "ambassador_kafka_requests_total", map[string]string{"api": "Produce"}) - before)
	var stored int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ends, err := adm.ListEndOffsets(context.Background(), "acks0")
		if err != nil {
			continue
		}
		o, _ := ends.Lookup("acks0", 0)
		if stored = o.Offset - 1 - n; stored == read {
			break
		}
	}
	if stored != read || read == 0 {
		t.Errorf("shutdown: the ambassador read %d acks=0 produce requests and %d were stored", read, stored)
	}
}

// TestKafkaMetadataV1AutoCreates: a Metadata request of a version before
// the auto-creation flag (v4) creates a missing topic, as a broker does.
func TestKafkaMetadataV1AutoCreates(t *testing.T) {
	e := newKafkaEnv(t)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("auto-v1")
	req.Topics = append(req.Topics, rt)
	e.eventually(5*time.Second, "topic auto-v1 created by a Metadata v1 request", func() bool {
		resp := raw(t, e.addr, req).(*kmsg.MetadataResponse)
		return len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 && len(resp.Topics[0].Partitions) == 6
	})
}

// TestKafkaConfigResourcesNameOnlyTheAmbassador: config resources of
// broker type show the ambassador's id alone, in listings, answers and
// error answers; a request naming another broker id is refused.
func TestKafkaConfigResourcesNameOnlyTheAmbassador(t *testing.T) {
	e := newKafkaEnv(t)
	ours := strconv.Itoa(int(ambID))
	{
		req := kmsg.NewPtrListConfigResourcesRequest()
		req.Version = 1
		req.ResourceTypes = []int8{int8(kmsg.ConfigResourceTypeBroker), int8(kmsg.ConfigResourceTypeBrokerLogger)}
		resp := raw(t, e.addr, req).(*kmsg.ListConfigResourcesResponse)
		got := map[int8][]string{}
		for _, r := range resp.ConfigResources {
			got[r.Type] = append(got[r.Type], r.Name)
		}
		for _, typ := range req.ResourceTypes {
			if len(got[typ]) != 1 || got[typ][0] != ours {
				t.Errorf("ListConfigResources type %d: %q, want only %q", typ, got[typ], ours)
			}
		}
	}
	describe := func(name string) kmsg.DescribeConfigsResponseResource {
		req := kmsg.NewPtrDescribeConfigsRequest()
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeBroker
		res.ResourceName = name
		req.Resources = append(req.Resources, res)
		resp := raw(t, e.addr, req).(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 1 {
			t.Fatalf("DescribeConfigs %q: %d resources", name, len(resp.Resources))
		}
		return resp.Resources[0]
	}
	if r := describe(ours); r.ErrorCode != 0 || r.ResourceName != ours || len(r.Configs) == 0 {
		t.Errorf("DescribeConfigs of the ambassador: %v %q, %d configs", kerr.ErrorForCode(r.ErrorCode), r.ResourceName, len(r.Configs))
	}
	for range 6 { // once routed to a random broker: right or wrong by chance
		if r := describe("0"); r.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("DescribeConfigs of backend broker 0: %v, want INVALID_REQUEST", kerr.ErrorForCode(r.ErrorCode))
		}
	}
	// the backend fails: the error answer still names the ambassador
	e.fake.ControlKey(int16(kmsg.DescribeConfigs), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.fake.KeepControl()
		return nil, errors.New("connection dropped by the test"), true
	})
	if r := describe(ours); r.ErrorCode == 0 || r.ResourceName != ours {
		t.Errorf("DescribeConfigs on a failing backend: %v, resource %q, want an error naming %q", kerr.ErrorForCode(r.ErrorCode), r.ResourceName, ours)
	}
}

// TestKafkaFindCoordinatorKeyTypes: a key type the request's version does
// not have (share groups before v6, unknown types) is refused with
// INVALID_REQUEST, as a broker refuses it.
func TestKafkaFindCoordinatorKeyTypes(t *testing.T) {
	e := newKafkaEnv(t)
	for _, c := range []struct {
		version int16
		typ     int8
		want    int16
	}{{4, 2, kerr.InvalidRequest.Code}, {5, 2, kerr.InvalidRequest.Code}, {4, 7, kerr.InvalidRequest.Code}, {2, 9, kerr.InvalidRequest.Code}, {4, 0, 0}, {4, 1, 0}} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = c.version
		req.CoordinatorType = c.typ
		key := "k"
		if c.typ == 2 {
			key = "g:AAAAAAAAAAAAAAAAAAAAAA:0" // a share coordinator key: group, topic id, partition
		}
		req.CoordinatorKey = key
		req.CoordinatorKeys = []string{key}
		resp := raw(t, e.addr, req).(*kmsg.FindCoordinatorResponse)
		code, node := resp.ErrorCode, resp.NodeID
		if c.version >= 4 {
			if len(resp.Coordinators) != 1 {
				t.Fatalf("v%d type %d: %d coordinators", c.version, c.typ, len(resp.Coordinators))
			}
			code, node = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
		}
		if code != c.want || (c.want == 0) != (node == ambID) {
			t.Errorf("FindCoordinator v%d type %d: %v node %d, want %v", c.version, c.typ, kerr.ErrorForCode(code), node, kerr.ErrorForCode(c.want))
		}
	}
}

// TestKafkaProduceDuplicatePartition: a produce request naming a partition
// twice (split over two leaders) gets INVALID_REQUEST for both entries and
// stores neither: one answer never acknowledges two batches.
func TestKafkaProduceDuplicatePartition(t *testing.T) {
	e := newKafkaEnv(t)
	topicWithLeaders(t, e, "dup", 0, 1)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "dup"
	for _, p := range []int32{0, 0, 1} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = oneBatch()
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := raw(t, e.addr, req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("answer %+v, want 3 partition entries", resp.Topics)
	}
	for i, want := range []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0} {
		if p := resp.Topics[0].Partitions[i]; p.ErrorCode != want {
			t.Errorf("entry %d (partition %d): %v, want %v", i, p.Partition, kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	ends, err := kadm.NewClient(e.direct).ListEndOffsets(context.Background(), "dup")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("dup", 0); o.Offset != 0 {
		t.Errorf("partition 0 holds %d records, want none", o.Offset)
	}
	if o, _ := ends.Lookup("dup", 1); o.Offset != 1 {
		t.Errorf("partition 1 holds %d records, want 1", o.Offset)
	}
}

// TestKafkaListAndDescribeGroups: ListGroups through the ambassador lists
// every group of every coordinator, each once; DescribeGroups for all of
// them at once (their coordinators differ) answers each.
func TestKafkaListAndDescribeGroups(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("lg", 3)
	produceKgo(t, e.client(), "lg", makeRecs("lg", 3))
	ctx := context.Background()
	adm := kadm.NewClient(e.client())
	want := map[string]bool{}
	for i := range 12 {
		g := fmt.Sprintf("listed-%d", i)
		want[g] = true
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: "lg", Partition: int32(i % 3), At: 1})
		if err := adm.CommitAllOffsets(ctx, g, offs); err != nil {
			t.Fatal(err)
		}
	}
	// the groups really sit on several coordinators
	coords := map[int32]bool{}
	direct := kadm.NewClient(e.direct)
	for g := range want {
		cs := direct.FindGroupCoordinators(ctx, g)
		for _, c := range cs {
			coords[c.NodeID] = true
		}
	}
	if len(coords) < 2 {
		t.Fatalf("the 12 groups share one coordinator; the test needs several")
	}
	resp := raw(t, e.addr, kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ListGroups: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	count := map[string]int{}
	for _, g := range resp.Groups {
		count[g.Group]++
	}
	for g := range want {
		if count[g] != 1 {
			t.Errorf("ListGroups lists %s %d times, want once", g, count[g])
		}
	}
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	for g := range want {
		dreq.Groups = append(dreq.Groups, g)
	}
	dresp := raw(t, e.addr, dreq).(*kmsg.DescribeGroupsResponse)
	if len(dresp.Groups) != len(want) {
		t.Fatalf("DescribeGroups of %d groups: %d answers", len(want), len(dresp.Groups))
	}
	for i, g := range dresp.Groups {
		if g.Group != dreq.Groups[i] || g.ErrorCode != 0 {
			t.Errorf("DescribeGroups answer %d: %s %v, want %s in request order", i, g.Group, kerr.ErrorForCode(g.ErrorCode), dreq.Groups[i])
		}
	}
}

// TestKafkaShutdownDrains: on shutdown a client's requests in flight get
// their real answers before its connection closes, even when the shutdown
// wakes the reader in the middle of the client's next frame.
func TestKafkaShutdownDrains(t *testing.T) {
	e := newKafkaEnvWith(t, map[string]string{"SHUTDOWN_TIMEOUT": "8s"})
	e.createTopic("drain", 1)
	produceKgo(t, e.client(), "drain", makeRecs("drain", 3))
	var held atomic.Bool
	e.fake.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		if held.CompareAndSwap(false, true) {
			time.Sleep(1500 * time.Millisecond) // the first one stays at the broker a while
		} else {
			e.fake.DropControl()
		}
		return nil, nil, false
	})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "drain"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1 // the end
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	id := "e2e-drain"
	if _, err := c.Write(wire.AppendRequest(nil, 1, &id, req)); err != nil {
		t.Fatal(err)
	}
	e.eventually(3*time.Second, "the ListOffsets held at the broker", held.Load)
	next := wire.AppendRequest(nil, 2, &id, kmsg.NewPtrApiVersionsRequest())
	if _, err := c.Write(next[:10]); err != nil { // half a frame
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := wire.ReadFrame(bufio.NewReader(c), 1<<20, nil)
	if err != nil {
		t.Fatalf("the request in flight at shutdown got no answer: %v", err)
	}
	resp, err := wire.DecodeResponse(int16(kmsg.ListOffsets), 4, frame)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.Offset != 3 {
		t.Errorf("ListOffsets in flight at shutdown: error %v offset %d, want its real answer (offset 3)", kerr.ErrorForCode(p.ErrorCode), p.Offset)
	}
	<-stopped
	closed := func(reason string) float64 {
		return metricValue(t, e.srv, "ambassador_frontend_connections_closed_total", map[string]string{"frontend": "kafka", "reason": reason})
	}
	if closed("shutdown") < 1 || closed("read_error") != 0 {
		t.Errorf("closes at shutdown: %v shutdown, %v read_error", closed("shutdown"), closed("read_error"))
	}
}

// TestKafkaAcks0ErrorCloses: an acks=0 produce the ambassador cannot take
// (a partition without a known leader) closes the connection, after the
// responses to the requests before it, as a broker does: the client's only
// way to learn of it.
func TestKafkaAcks0ErrorCloses(t *testing.T) {
	e := newKafkaEnv(t)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := "e2e-acks0-err"
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = 0
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "no-such-topic"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneBatch()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	frames := wire.AppendRequest(nil, 1, &id, kmsg.NewPtrApiVersionsRequest())
	frames = wire.AppendRequest(frames, 2, &id, req)
	answeredThenClosed(t, c, frames, "an acks=0 produce to an unknown topic")
}

// topicWithLeaders creates topic with one partition per leader given
// (partition i led by broker leaders[i]) and waits until the ambassador
// routes every partition to its leader: a fetch of each answers without
// error.
func topicWithLeaders(t *testing.T, e *kafkaEnv, topic string, leaders ...int32) {
	t.Helper()
	e.createTopic(topic, len(leaders))
	offsets := map[int32]int64{}
	for p, l := range leaders {
		if err := e.fake.MoveTopicPartition(topic, int32(p), l); err != nil {
			t.Fatal(err)
		}
		offsets[int32(p)] = 0
	}
	e.eventually(5*time.Second, "the ambassador routes "+topic+" to its moved leaders", func() bool {
		req := fetchRequest(topic, 0, offsets)
		req.MinBytes = 0
		resp := raw(t, e.addr, req).(*kmsg.FetchResponse)
		n := 0
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				if p.ErrorCode != 0 {
					return false
				}
				n++
			}
		}
		return n == len(leaders)
	})
}

// fetchRequest is a v11 fetch of topic's partitions from the given offsets
// (in partition order), MinBytes 1, 1 MiB per partition.
func fetchRequest(topic string, maxWaitMillis int32, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxWaitMillis = maxWaitMillis
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range slices.Sorted(maps.Keys(offsets)) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = offsets[p]
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// batchesEnd returns the offset after the last complete v2 record batch
// in b, -1 for none.
func batchesEnd(b []byte) int64 {
	next := int64(-1)
	for len(b) >= 61 {
		n := int32(binary.BigEndian.Uint32(b[8:]))
		if n < 49 || int(n)+12 > len(b) {
			break
		}
		next = int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		b = b[12+n:]
	}
	return next
}

// connHooks counts a franz-go client's connections and fetch requests.
type connHooks struct{ connects, fetches atomic.Int64 }

func (h *connHooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		h.connects.Add(1)
	}
}

func (h *connHooks) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil { // Fetch
		h.fetches.Add(1)
	}
}

func histogramCount(t testing.TB, srv *server.Server, name, api string) uint64 {
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "api" && lp.GetValue() == api {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestKafkaBackendSecurity: the ambassador holds the TLS and SASL settings
// of the brokers; clients connect to it with neither.
func TestKafkaBackendSecurity(t *testing.T) {
	caFile, serverTLS := testCerts(t)
	cases := []struct {
		name, mech string
		tls        bool
	}{
		{"sasl-plain", "PLAIN", false},
		{"sasl-scram-sha-256", "SCRAM-SHA-256", false},
		{"tls-sasl-scram-sha-512", "SCRAM-SHA-512", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{
				"KAFKA_SASL_MECHANISM": c.mech,
				"KAFKA_SASL_USERNAME":  "amb",
				"KAFKA_SASL_PASSWORD":  "s3cret",
			}
			opts := []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(c.mech, "amb", "s3cret")}
			if c.tls {
				env["KAFKA_TLS"] = "true"
				env["KAFKA_TLS_CA_FILE"] = caFile
				opts = append(opts, kfake.TLS(serverTLS))
			}
			e := newKafkaEnvWith(t, env, opts...)
			want := makeRecs(c.name, 100)
			produceKgo(t, e.client(kgo.AllowAutoTopicCreation()), "secure", want)
			sameRecs(t, "kgo without credentials", e.consumeKgo(t, "secure", len(want), nil), want)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := e.kcat(ctx, "", "-C", "-t", "secure", "-o", "beginning", "-e", "-q", "-f", "%k|%s\n")
			if err != nil {
				t.Fatal(err)
			}
			sameRecs(t, "kcat without credentials", parseLines(out), want)
			e.eventually(5*time.Second, "brokers probed up (over TLS when on)", func() bool {
				up := 0
				for _, cl := range e.srv.Nodes().Clusters {
					for _, n := range cl.Nodes {
						if n.State == "up" && !n.LastProbe.IsZero() && n.LastError == "" {
							up++
						}
					}
				}
				return up == 3
			})
		})
	}
	t.Run("wrong-password", func(t *testing.T) {
		kc := harness.NewKafka(t, 3, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "amb", "right"))
		e := &kafkaEnv{t: t, fake: kc.Cluster, brokers: kc.Addrs}
		e.startAmbassador(map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "amb", "KAFKA_SASL_PASSWORD": "wrong"})
		// never ready, for several health rounds, and the reason says why
		for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if r := e.srv.Readyz(); r.Ready {
				t.Fatal("ready although the brokers refuse the ambassador's credentials")
			}
		}
		if cfg, err := json.Marshal(e.srv.Config()); err != nil || strings.Contains(string(cfg), "wrong") {
			t.Errorf("the SASL password shows in the config: %s", cfg)
		}
	})
}

// TestKafkaSASLSessionRenewal: brokers that give SASL sessions a lifetime
// (connections.max.reauth.ms, KIP-368) close a connection whose session
// ran out; the ambassador renews the session on its backend connections
// in time, under steady produce and consume traffic, without a client
// seeing an error or losing a record.
func TestKafkaSASLSessionRenewal(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			env := map[string]string{
				"KAFKA_SASL_MECHANISM": mech,
				"KAFKA_SASL_USERNAME":  "amb",
				"KAFKA_SASL_PASSWORD":  "s3cret",
			}
			e := newKafkaEnvWith(t, env, kfake.EnableSASL(), kfake.Superuser(mech, "amb", "s3cret"),
				kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "1500"}))
			// through the ambassador: the brokers want SASL, the test
			// client has no credentials
			if resp, err := kadm.NewClient(e.client()).CreateTopic(context.Background(), 3, 1, nil, "renew"); err != nil || resp.Err != nil {
				t.Fatalf("create topic: %v %v", err, resp.Err)
			}
			renewals := func(result string) float64 {
				return metricValue(t, e.srv, "ambassador_kafka_backend_sasl_renewals_total", map[string]string{"result": result})
			}

			// A consumer long-polling the whole time (its fetch
			// connections renew with fetches in flight) ...
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cons := e.client(kgo.ConsumeTopics("renew"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond))
			got := make(chan []rec, 1)
			var want []rec
			var fetchErrs []string // what the consumer saw; read after got
			go func() {
				var rs []rec
				for ctx.Err() == nil {
					fs := cons.PollFetches(ctx)
					fs.EachError(func(tp string, p int32, err error) {
						if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
							fetchErrs = append(fetchErrs, fmt.Sprintf("%s/%d: %v", tp, p, err))
						}
					})
					fs.EachRecord(func(r *kgo.Record) { rs = append(rs, rec{string(r.Key), string(r.Value)}) })
					if len(rs) >= 150 {
						break
					}
				}
				got <- rs
			}()
			// ... and a producer sending a little every 20 ms, over two
			// session lifetimes.
			prod := e.client(kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			start := time.Now()
			for i := 0; time.Since(start) < 3500*time.Millisecond || i < 150; i++ {
				if i >= 150 {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				r := rec{fmt.Sprintf("k%03d", i), fmt.Sprintf("v%03d", i)}
				want = append(want, r)
				if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "renew", Key: []byte(r.key), Value: []byte(r.value)}).FirstErr(); err != nil {
					t.Fatalf("produce %d: %v (renewals ok %v, failed %v)", i, err, renewals("ok"), renewals("error"))
				}
				time.Sleep(15 * time.Millisecond)
			}
			rs := <-got
			slices.SortFunc(rs, func(a, b rec) int { return strings.Compare(a.key, b.key) })
			sameRecs(t, "records consumed across renewals", rs, want)
			if len(fetchErrs) != 0 {
				t.Errorf("the consumer saw %d fetch errors across renewals, the first: %s", len(fetchErrs), fetchErrs[0])
			}
			ok, failed := renewals("ok"), renewals("error")
			t.Logf("%s: %v sessions renewed, %v failed", mech, ok, failed)
			// Each backend connection renews every 0.75 s (the lifetime
			// less its lead); over 3.5 s and several connections that is
			// many renewals.
			if ok < 6 || failed != 0 {
				t.Errorf("SASL renewals: %v ok, %v failed; want at least 6 and no failure", ok, failed)
			}
			if n := metricValue(t, e.srv, "ambassador_kafka_errors_total", map[string]string{"reason": "backend"}); n != 0 {
				t.Errorf("%v backend connection failures during renewals", n)
			}
		})
	}
}

// testCerts makes a CA and a certificate for 127.0.0.1 signed by it; it
// returns the CA's PEM file and the server's TLS config.
func testCerts(t testing.TB) (string, *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(cryptorand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(cryptorand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestKafkaBatchedRequestNamesAGroupTwice: OffsetFetch v8+ and DeleteGroups
// naming one group twice get an answer per entry, each its own, as the
// group's coordinator gives directly (OffsetFetch: each entry's offsets
// for its own topics; DeleteGroups: deleted, then GROUP_ID_NOT_FOUND).
func TestKafkaBatchedRequestNamesAGroupTwice(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("twice-a", 1)
	e.createTopic("twice-b", 1)
	ctx := context.Background()
	commit := func(group, topic string, at int64) {
		t.Helper()
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at})
		if err := kadm.NewClient(e.direct).CommitAllOffsets(ctx, group, offs); err != nil {
			t.Fatal(err)
		}
	}
	commit("twice", "twice-a", 5)
	commit("twice", "twice-b", 7)
	entry := func(topic string) kmsg.OffsetFetchRequestGroup {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "twice"
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic = topic
		rt.Partitions = []int32{0}
		g.Topics = []kmsg.OffsetFetchRequestGroupTopic{rt}
		return g
	}
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Version = 8
	freq.Groups = []kmsg.OffsetFetchRequestGroup{entry("twice-a"), entry("twice-b")}
	show := func(r *kmsg.OffsetFetchResponse) string {
		var b strings.Builder
		for _, g := range r.Groups {
			fmt.Fprintf(&b, "[%s %v", g.Group, kerr.ErrorForCode(g.ErrorCode))
			for _, tp := range g.Topics {
				for _, p := range tp.Partitions {
					fmt.Fprintf(&b, " %s/%d@%d", tp.Topic, p.Partition, p.Offset)
				}
			}
			b.WriteString("]")
		}
		return b.String()
	}
	coord := e.brokers[e.fake.CoordinatorFor("twice")]
	direct := show(raw(t, coord, freq).(*kmsg.OffsetFetchResponse))
	if want := "[twice <nil> twice-a/0@5][twice <nil> twice-b/0@7]"; direct != want {
		t.Fatalf("the coordinator directly answers %s, want %s", direct, want)
	}
	if got := show(raw(t, e.addr, freq).(*kmsg.OffsetFetchResponse)); got != direct {
		t.Errorf("OffsetFetch naming a group twice: ambassador %s, coordinator directly %s", got, direct)
	}

	dreq := kmsg.NewPtrDeleteGroupsRequest()
	dreq.Version = 2
	dreq.Groups = []string{"twice", "twice"}
	dresp := raw(t, e.addr, dreq).(*kmsg.DeleteGroupsResponse)
	var got []string
	for _, g := range dresp.Groups {
		got = append(got, fmt.Sprintf("%s %v", g.Group, kerr.ErrorForCode(g.ErrorCode)))
	}
	if len(got) != 2 || got[0] != "twice <nil>" || !strings.HasPrefix(got[1], "twice GROUP_ID_NOT_FOUND") {
		t.Errorf("DeleteGroups naming a group twice: %q, want deleted, then GROUP_ID_NOT_FOUND (as the coordinator answers)", got)
	}
	if _, err := kadm.NewClient(e.direct).FetchOffsets(ctx, "twice"); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("after DeleteGroups the group's offsets: %v, want GROUP_ID_NOT_FOUND", err)
	}
}

// TestKafkaPartitionNamedTwice: ListOffsets, OffsetForLeaderEpoch and
// DeleteRecords naming a partition twice get per entry what the
// partition's leader answers to the same request directly (ListOffsets:
// INVALID_REQUEST for both, as Kafka; OffsetForLeaderEpoch: each its own).
func TestKafkaPartitionNamedTwice(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("dup-p", 1)
	produceKgo(t, e.client(), "dup-p", makeRecs("dup-p", 4))
	leader := e.brokers[e.fake.LeaderFor("dup-p", 0)]

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "dup-p"
	for _, ts := range []int64{-2, -1} { // earliest, then latest
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.Timestamp, p.CurrentLeaderEpoch = 0, ts, -1
		lt.Partitions = append(lt.Partitions, p)
	}
	lo.Topics = []kmsg.ListOffsetsRequestTopic{lt}
	showLO := func(r *kmsg.ListOffsetsResponse) string {
		var b strings.Builder
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, "[%s/%d %v @%d]", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode), p.Offset)
			}
		}
		return b.String()
	}
	direct := showLO(raw(t, leader, lo).(*kmsg.ListOffsetsResponse))
	if got := showLO(raw(t, e.addr, lo).(*kmsg.ListOffsetsResponse)); got != direct {
		t.Errorf("ListOffsets naming a partition twice: ambassador %s, leader directly %s", got, direct)
	}

	// OffsetForLeaderEpoch answers each entry (here: a known epoch, then
	// one the partition never had).
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.Version = 3
	oe.ReplicaID = -1
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = "dup-p"
	for _, epoch := range []int32{0, 7} {
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition, p.LeaderEpoch, p.CurrentLeaderEpoch = 0, epoch, -1
		ot.Partitions = append(ot.Partitions, p)
	}
	oe.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{ot}
	showOE := func(r *kmsg.OffsetForLeaderEpochResponse) string {
		var b strings.Builder
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, "[%s/%d %v epoch %d end %d]", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode), p.LeaderEpoch, p.EndOffset)
			}
		}
		return b.String()
	}
	direct = showOE(raw(t, leader, oe).(*kmsg.OffsetForLeaderEpochResponse))
	if got := showOE(raw(t, e.addr, oe).(*kmsg.OffsetForLeaderEpochResponse)); got != direct {
		t.Errorf("OffsetForLeaderEpoch naming a partition twice: ambassador %s, leader directly %s", got, direct)
	}

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Version = 1
	dr.TimeoutMillis = 5000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "dup-p"
	for _, off := range []int64{1, 2} {
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Partition, p.Offset = 0, off
		dt.Partitions = append(dt.Partitions, p)
	}
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{dt}
	showDR := func(r *kmsg.DeleteRecordsResponse) string {
		var b strings.Builder
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				fmt.Fprintf(&b, "[%s/%d %v low %d]", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode), p.LowWatermark)
			}
		}
		return b.String()
	}
	// Deleting is not idempotent in what it answers: ask the leader first
	// with offsets 1, 2, then the ambassador with the same request, which
	// deletes nothing more. The leader (as Kafka's, which keeps the
	// partitions in a map) answers a repeated partition once; the
	// ambassador gives that answer to each entry the client sent.
	_ = raw(t, leader, dr)
	direct = showDR(raw(t, leader, dr).(*kmsg.DeleteRecordsResponse))
	if got := showDR(raw(t, e.addr, dr).(*kmsg.DeleteRecordsResponse)); got != direct+direct {
		t.Errorf("DeleteRecords naming a partition twice: ambassador %s, leader directly %s (once per entry wanted)", got, direct)
	}
}

// TestKafkaHungBrokerHoldsOnlyItsPartitions: one broker that takes
// produce and fetch requests and does not answer must not hold the
// partitions of the healthy brokers. A split produce answers the healthy
// leaders' partitions and gives the hung one's REQUEST_TIMED_OUT before
// the request's own timeout; a fetch is answered at its MaxWait (plus a
// short grace) with what the healthy brokers brought.
func TestKafkaHungBrokerHoldsOnlyItsPartitions(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("hang", 6)
	topic := "hang"
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	raw(t, e.addr, mreq) // as a client does first
	var hung int32 = -1
	for p := int32(0); p < 6 && hung < 0; p++ {
		hung = e.fake.LeaderFor("hang", p)
	}
	release := make(chan struct{})
	defer close(release)
	var holding atomic.Bool
	hold := func(kmsg.Request) (kmsg.Response, error, bool) {
		e.fake.KeepControl()
		if holding.Load() && e.fake.CurrentNode() == hung {
			e.fake.SleepControl(func() { <-release })
		}
		return nil, nil, false
	}
	e.fake.ControlKey(0, hold)
	e.fake.ControlKey(1, hold)
	holding.Store(true)

	// produce: one request over the six partitions, 3 s timeout
	pr := kmsg.NewPtrProduceRequest()
	pr.Version, pr.Acks, pr.TimeoutMillis = 7, -1, 3000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "hang"
	for p := int32(0); p < 6; p++ {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition = p
		pp.Records = oneBatch()
		pt.Partitions = append(pt.Partitions, pp)
	}
	pr.Topics = []kmsg.ProduceRequestTopic{pt}
	start := time.Now()
	presp := raw(t, e.addr, pr).(*kmsg.ProduceResponse)
	took := time.Since(start)
	if took > 3*time.Second {
		t.Errorf("split produce with one hung leader answered after %v, past its 3 s timeout", took)
	}
	for _, rp := range presp.Topics[0].Partitions {
		onHung := e.fake.LeaderFor("hang", rp.Partition) == hung
		switch {
		case onHung && rp.ErrorCode != kerr.RequestTimedOut.Code:
			t.Errorf("partition %d on the hung broker: %v, want REQUEST_TIMED_OUT", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
		case !onHung && rp.ErrorCode != 0:
			t.Errorf("partition %d on a healthy broker: %v, want stored", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
		}
	}

	// fetch, MaxWait 500 ms: the healthy partitions at their end (an
	// empty long poll), the hung broker's from the start
	offsets := map[int32]int64{}
	for p := int32(0); p < 6; p++ {
		if e.fake.LeaderFor("hang", p) != hung {
			offsets[p] = 1
		}
	}
	for i := range 2 { // the second adopts the hung part the first left
		start = time.Now()
		fresp := raw(t, e.addr, fetchRequest("hang", 500, offsets)).(*kmsg.FetchResponse)
		took = time.Since(start)
		if took > 3*time.Second {
			t.Errorf("fetch %d with MaxWait 500 ms and one hung broker answered after %v", i, took)
		}
		for _, ft := range fresp.Topics {
			for _, fp := range ft.Partitions {
				if fp.ErrorCode != 0 {
					t.Errorf("fetch %d: partition %d: %v", i, fp.Partition, kerr.ErrorForCode(fp.ErrorCode))
				}
			}
		}
	}
	// and data still flows from the healthy brokers meanwhile
	for p := range offsets {
		offsets[p] = 0
	}
	fresp := raw(t, e.addr, fetchRequest("hang", 500, offsets)).(*kmsg.FetchResponse)
	got := 0
	for _, ft := range fresp.Topics {
		for _, fp := range ft.Partitions {
			if len(fp.RecordBatches) > 0 {
				got++
			}
		}
	}
	if got == 0 {
		t.Errorf("a fetch from the start of the healthy partitions got no records")
	}
}

// cutListener wraps kfake's listeners: while armed, a connection that
// sends a request of key is closed before the broker reads it (a broker
// that drops connections right after a request), and each cut is counted.
type cutListener struct {
	key   int16
	armed atomic.Bool
	cuts  atomic.Int32
}

func (l *cutListener) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &cutLn{Listener: ln, l: l}, nil
}

type cutLn struct {
	net.Listener
	l *cutListener
}

func (ln *cutLn) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, l: ln.l}, nil
}

type cutConn struct {
	net.Conn
	l   *cutListener
	buf []byte
}

func (c *cutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.l.armed.Load() {
		c.buf = nil
		return n, err
	}
	c.buf = append(c.buf, p[:n]...)
	for len(c.buf) >= 6 {
		size := int(binary.BigEndian.Uint32(c.buf))
		if int16(binary.BigEndian.Uint16(c.buf[4:])) == c.l.key {
			c.l.cuts.Add(1)
			c.Conn.Close()
			return 0, io.EOF
		}
		if len(c.buf) < 4+size {
			break
		}
		c.buf = c.buf[4+size:]
	}
	return n, err
}

// TestKafkaFailingBrokerBacksOff: a broker that drops every connection
// right after an InitProducerId request gets the producer's retries at a
// pace, not in a loop: the ambassador answers its repeated failures with
// a growing delay (directly the client backs off reconnecting).
func TestKafkaFailingBrokerBacksOff(t *testing.T) {
	cl := &cutListener{key: int16(kmsg.InitProducerID)}
	e := newKafkaEnv(t, kfake.ListenFn(cl.listen))
	e.createTopic("storm", 3)
	cl.armed.Store(true)
	p := e.client(kgo.DefaultProduceTopic("storm"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	cancel()
	p.Close()
	cuts := cl.cuts.Load()
	t.Logf("3 s of a broker dropping InitProducerId: %d requests cut; produce: %v", cuts, err)
	if cuts > 40 {
		t.Errorf("the producer's InitProducerId reached the failing broker %d times in 3 s; want retries at a pace", cuts)
	}
	// and once the broker behaves, the producer goes on
	cl.armed.Store(false)
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p2 := e.client(kgo.DefaultProduceTopic("storm"))
	if err := p2.ProduceSync(ctx, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
		t.Errorf("produce once the broker answers again: %v", err)
	}
}

// TestKafkaVersionsNarrowedClientsAskAgain: a client that asked
// ApiVersions before the ambassador knew the brokers' versions (no broker
// reachable at start), or before the cluster came back older on the same
// addresses, was offered versions the brokers lack. It must recover
// without a restart: when it uses one, its connection is closed and it
// asks again (answering UNSUPPORTED_VERSION would fail it for good).
func TestKafkaVersionsNarrowedClientsAskAgain(t *testing.T) {
	ports, err := harness.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, p := range ports {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	e := &kafkaEnv{t: t, brokers: addrs}
	e.startAmbassador(nil)
	if e.srv.Readyz().Ready {
		t.Fatal("ready without any backend")
	}
	early := e.client(kgo.DefaultProduceTopic("early"), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = early.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr() // it asks ApiVersions meanwhile
	cancel()

	dir := t.TempDir() // the clusters that replace each other keep the topics (and their ids)
	start := func(opts ...kfake.Opt) *kfake.Cluster {
		kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.Ports(ports...), kfake.AllowAutoTopicCreation(), kfake.DataDir(dir)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	produce := func(what string, cl *kgo.Client) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(what)}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", what, err)
		}
	}

	// the cluster appears, at older versions than the ambassador handles
	kc := start(kfake.MaxVersions(kversionCapped()))
	e.eventually(20*time.Second, "ready once the cluster is up", func() bool { return e.srv.Readyz().Ready })
	produce("client that asked before any broker answered", early)

	// the cluster is replaced on the same addresses by a newer one, then by
	// the older one again (a rollback); a client connected to the newer
	// one recovers
	kc.Close()
	e.eventually(20*time.Second, "not ready", func() bool { return !e.srv.Readyz().Ready })
	kc = start()
	e.eventually(20*time.Second, "ready again", func() bool { return e.srv.Readyz().Ready })
	newer := e.client(kgo.DefaultProduceTopic("newer"), kgo.AllowAutoTopicCreation())
	e.eventually(20*time.Second, "the newer versions offered", func() bool {
		av := raw(t, e.addr, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
		for _, k := range av.ApiKeys {
			if mx, _ := kversionCapped().LookupMaxKeyVersion(k.ApiKey); k.ApiKey == 0 && k.MaxVersion > mx {
				return true
			}
		}
		return false
	})
	produce("client on the newer cluster", newer)
	// a raw client told the newer versions
	rc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	av := rawOn(t, rc, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	var told int16 = -1
	for _, k := range av.ApiKeys {
		if k.ApiKey == 0 {
			told = k.MaxVersion
		}
	}
	if mx, _ := kversionCapped().LookupMaxKeyVersion(0); told <= mx {
		t.Fatalf("produce v%d offered; want above the older cluster's v%d", told, mx)
	}
	kc.Close()
	e.eventually(20*time.Second, "not ready", func() bool { return !e.srv.Readyz().Ready })
	kc = start(kfake.MaxVersions(kversionCapped()))
	defer kc.Close()
	e.eventually(20*time.Second, "ready again", func() bool { return e.srv.Readyz().Ready })
	produce("client after the rollback", newer)

	// The raw client pipelines a request both clusters take, a produce at
	// the version it was told, and a CreateTopics: the first is answered,
	// then the connection closes, and the CreateTopics was never read.
	id := "e2e-narrowed"
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 4
	pr := kmsg.NewPtrProduceRequest()
	pr.Version = told
	pr.Acks = -1
	pr.TimeoutMillis = 5000
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 4
	ct.TimeoutMillis = 5000
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic = "after-close"
	ctt.NumPartitions = 1
	ctt.ReplicationFactor = 1
	ct.Topics = append(ct.Topics, ctt)
	frames := wire.AppendRequest(nil, 1, &id, md)
	frames = wire.AppendRequest(frames, 2, &id, pr)
	frames = wire.AppendRequest(frames, 3, &id, ct)
	answeredThenClosed(t, rc, frames, "a produce at a version the brokers no longer support")
	time.Sleep(200 * time.Millisecond)
	tn := "after-close"
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: &tn}}
	mreq.Version = 4 // v0-v3 create it
	mreq.AllowAutoTopicCreation = false
	if m := raw(t, e.addr, mreq).(*kmsg.MetadataResponse); len(m.Topics) != 1 || m.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("the CreateTopics after the closing request was acted on: %+v", m.Topics)
	}
}

// TestKafkaShutdownAnswersFetchOfFailedBroker: a fetch whose broker
// connections failed waits out its MaxWait, but shutdown answers it at
// once, as any fetch waiting.
func TestKafkaShutdownAnswersFetchOfFailedBroker(t *testing.T) {
	cl := &cutListener{key: int16(kmsg.Fetch)}
	e := newKafkaEnvWith(t, map[string]string{"SHUTDOWN_TIMEOUT": "30s"}, kfake.ListenFn(cl.listen))
	e.createTopic("cutf", 3)
	topic := "cutf"
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	raw(t, e.addr, mreq)
	cl.armed.Store(true)

	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := "raw"
	if _, err := c.Write(wire.AppendRequest(nil, 7, &id, fetchRequest("cutf", 10000, map[int32]int64{0: 0, 1: 0, 2: 0}))); err != nil {
		t.Fatal(err)
	}
	answered := make(chan time.Time, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := wire.ReadFrame(bufio.NewReader(c), 1<<30, nil)
		if err == nil {
			answered <- time.Now()
		}
		close(answered)
	}()
	e.eventually(5*time.Second, "the fetch's broker connections cut", func() bool { return cl.cuts.Load() > 0 })
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	e.stop()
	at, ok := <-answered
	if !ok {
		t.Fatalf("the fetch was not answered before the connection closed (shutdown took %v)", time.Since(start))
	}
	if d := at.Sub(start); d > 3*time.Second {
		t.Errorf("shutdown answered the fetch after %v; want at once, not at its 10 s MaxWait", d)
	}
}

// TestKafkaNegativeTimeouts: a request whose own timeout is negative is
// valid Kafka (a broker answers it at once: an invalid session timeout, a
// topic created without waiting). Its backend read deadline must not land
// in the past: that failed the connection, answered a made-up error, and
// counted against a healthy broker (five of them marked it down).
func TestKafkaNegativeTimeouts(t *testing.T) {
	e := newKafkaEnv(t)
	const g = "neg-timeout"
	join := func() *kmsg.JoinGroupRequest {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Version = 5
		r.Group = g
		r.ProtocolType = "consumer"
		r.SessionTimeoutMillis = -60000
		r.RebalanceTimeoutMillis = -60000
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		return r
	}
	coord := e.brokers[e.fake.CoordinatorFor(g)]
	d := raw(t, coord, join()).(*kmsg.JoinGroupResponse)
	for range 5 {
		if a := raw(t, e.addr, join()).(*kmsg.JoinGroupResponse); a.ErrorCode != d.ErrorCode {
			t.Fatalf("JoinGroup with a negative session timeout: ambassador %v, coordinator directly %v", kerr.ErrorForCode(a.ErrorCode), kerr.ErrorForCode(d.ErrorCode))
		}
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	ct.TimeoutMillis = -60000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = "neg-timeout-topic"
	rt.NumPartitions = 1
	rt.ReplicationFactor = 1
	ct.Topics = append(ct.Topics, rt)
	if ca := raw(t, e.addr, ct).(*kmsg.CreateTopicsResponse); ca.Topics[0].ErrorCode != 0 {
		t.Errorf("CreateTopics with timeout -60000: %v; a broker creates it", kerr.ErrorForCode(ca.Topics[0].ErrorCode))
	}
	for _, c := range e.srv.Nodes().Clusters {
		for _, n := range c.Nodes {
			if n.State != "up" || n.ConsecutiveFails > 0 {
				t.Errorf("broker %s %s (failures %d, %s) after requests with negative timeouts", n.Addr, n.State, n.ConsecutiveFails, n.LastError)
			}
		}
	}
}

// TestKafkaFetchSessionEpochs: the ambassador hands out no fetch session,
// but a full fetch naming one (epoch -1: sessionless, closing it; epoch 0:
// asking for a new one) is served, as brokers serve it (KIP-227);
// kafka-go's Client.Fetch sends session id -1, epoch -1, and got
// FETCH_SESSION_ID_NOT_FOUND on every call. Only an incremental fetch
// (epoch > 0) names a session that must exist.
func TestKafkaFetchSessionEpochs(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("fs", 1)
	produceKgo(t, e.client(kgo.DefaultProduceTopic("fs")), "fs", makeRecs("s", 5))
	for _, tc := range []struct {
		id, epoch int32
		ok        bool
	}{{0, -1, true}, {-1, -1, true}, {12345, -1, true}, {12345, 0, true}, {0, 0, true}, {12345, 1, false}} {
		req := fetchRequest("fs", 100, map[int32]int64{0: 0})
		req.SessionID, req.SessionEpoch = tc.id, tc.epoch
		resp := raw(t, e.addr, req).(*kmsg.FetchResponse)
		if !tc.ok {
			if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Errorf("incremental fetch of session %d epoch %d: %v, want FETCH_SESSION_ID_NOT_FOUND", tc.id, tc.epoch, kerr.ErrorForCode(resp.ErrorCode))
			}
			continue
		}
		if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Errorf("full fetch naming session %d epoch %d: error %v, session %d, %d topics; want the records, no session", tc.id, tc.epoch, kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, len(resp.Topics))
		}
	}
}

// TestKafkaDeclaredFrameSizesBounded: a request frame's buffer is
// allocated at its declared size when its 4 size bytes arrive; clients
// declaring large frames and sending nothing more made the ambassador
// hold that much each (8 bytes sent per 100 MiB held). The bytes of large
// frames being read are bounded; small requests go on meanwhile.
func TestKafkaDeclaredFrameSizesBounded(t *testing.T) {
	e := newKafkaEnv(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:4], 100<<20) // 100 MiB declared, 4 bytes of it sent
		if _, err := c.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 400<<20 {
		t.Errorf("8 frames of 100 MiB declared, 8 bytes each sent: the heap grew by %d MiB", grew>>20)
	}
	// a small request is answered meanwhile
	if resp := raw(t, e.addr, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Errorf("ApiVersions while large frames are declared: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	for _, c := range conns {
		c.Close()
	}
}

// answeredThenClosed writes frames (correlation ids from 1) to c and
// checks that the first request is answered, then the connection closes
// (after the second request, what).
func answeredThenClosed(t *testing.T, c net.Conn, frames []byte, what string) {
	t.Helper()
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	frame, err := wire.ReadFrame(br, 1<<20, nil)
	if err != nil {
		t.Fatalf("the request before %s got no answer: %v", what, err)
	}
	if corr, _ := wire.ResponseCorrelation(frame); corr != 1 {
		t.Fatalf("answer with correlation id %d, want 1", corr)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after %s: %v, want the connection closed", what, err)
	}
}

// TestKafkaAdminRequestsOff: clients act with the ambassador's backend
// identity; with kafka.admin_requests off, the requests that change the
// cluster or its security (and read its security) are refused with
// CLUSTER_AUTHORIZATION_FAILED, while producing and consuming go on.
func TestKafkaAdminRequestsOff(t *testing.T) {
	e := newKafkaEnvWith(t, map[string]string{"KAFKA_ADMIN_REQUESTS": "false"})
	e.createTopic("adm", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(e.client())
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, "adm-new"); err == nil && resp.Err == nil {
		t.Error("CreateTopics went through with kafka.admin_requests off")
	} else if err == nil && !errors.Is(resp.Err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("CreateTopics: %v, want CLUSTER_AUTHORIZATION_FAILED", resp.Err)
	}
	if e.fake.TopicInfo("adm-new") != nil {
		t.Error("the refused topic exists")
	}
	acl := kmsg.NewPtrCreateACLsRequest()
	acl.Version = 2
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "adm", kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host, c.Operation, c.PermissionType = "User:evil", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
	acl.Creations = append(acl.Creations, c)
	if r := raw(t, e.addr, acl).(*kmsg.CreateACLsResponse); len(r.Results) != 1 || r.Results[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("CreateACLs with admin requests off: %+v", r.Results)
	}
	scram := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	if r := raw(t, e.addr, scram).(*kmsg.DescribeUserSCRAMCredentialsResponse); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("DescribeUserSCRAMCredentials with admin requests off: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	produceKgo(t, e.client(kgo.DefaultProduceTopic("adm")), "adm", makeRecs("a", 5))
	sameRecs(t, "records with admin requests off", e.consumeKgo(t, "adm", 5, nil), makeRecs("a", 5))
}

// TestKafkaLargeNonProduceRefused: a request other than Produce carries no
// record batches; one over 16 MiB closes the connection with a log line
// (decoding it could allocate ~34 times its size for the arrays it
// declares), while the connection of a client that behaves goes on.
func TestKafkaLargeNonProduceRefused(t *testing.T) {
	e := newKafkaEnv(t)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, 17<<20)
	binary.BigEndian.PutUint16(body[0:], 3) // Metadata
	binary.BigEndian.PutUint16(body[2:], 4) // v4
	binary.BigEndian.PutUint32(body[4:], 1) // correlation id
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	go func() { _, _ = c.Write(append(frame, body...)) }()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 16)); err == nil || n != 0 {
		t.Errorf("a 17 MiB Metadata request: read %d bytes, %v; want the connection closed", n, err)
	}
	if n := metricValue(t, e.srv, "ambassador_kafka_errors_total", map[string]string{"reason": "too_large"}); n != 1 {
		t.Errorf("errors{too_large} = %v", n)
	}
	if resp := raw(t, e.addr, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Errorf("another client: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestKafkaCoordinatorMovedRetried: after group coordinators move, a
// request for a group whose coordinator the ambassador had cached is sent
// again to the new coordinator, not answered NOT_COORDINATOR (KafkaJS asks
// FindCoordinator before each commit and fails on it: fetchOffsets threw,
// transactions had to abort); and two commits pipelined across the move
// reach the coordinator in the client's order.
func TestKafkaCoordinatorMovedRetried(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("moved", 1)
	commitReq := func(group string, at int64) *kmsg.OffsetCommitRequest {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = 8
		req.Group = group
		req.Generation = -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "moved"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, at
		rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{rp}
		req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
		return req
	}
	fetch := func(group string) (int64, int16) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 7
		req.Group = group
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = "moved"
		rt.Partitions = []int32{0}
		req.Topics = []kmsg.OffsetFetchRequestTopic{rt}
		resp := raw(t, e.addr, req).(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return -1, resp.ErrorCode
		}
		p := resp.Topics[0].Partitions[0]
		return p.Offset, p.ErrorCode
	}
	var groups []string
	for i := range 12 {
		g := "moved-" + strconv.Itoa(i)
		groups = append(groups, g)
		resp := raw(t, e.addr, commitReq(g, int64(i+1))).(*kmsg.OffsetCommitResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %s: %v", g, kerr.ErrorForCode(code))
		}
	}
	before := map[string]int32{}
	for _, g := range groups {
		before[g] = e.fake.CoordinatorFor(g)
	}
	e.fake.RehashCoordinators()
	moved := 0
	for i, g := range groups {
		if e.fake.CoordinatorFor(g) != before[g] {
			moved++
		}
		if at, code := fetch(g); code != 0 || at != int64(i+1) {
			t.Errorf("OffsetFetch %s after the coordinators moved: offset %d, %v; want %d", g, at, kerr.ErrorForCode(code), i+1)
		}
	}
	if moved == 0 {
		t.Fatal("no coordinator of 12 moved: the test tests nothing")
	}

	// two commits on one connection, the coordinators moving before them
	for round := range 5 {
		g := groups[round]
		e.fake.RehashCoordinators()
		conn, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		noErr(t, "dial", err)
		id := "e2e-order"
		first, second := int64(100+10*round), int64(105+10*round)
		var b []byte
		b = wire.AppendRequest(b, 1, &id, commitReq(g, first))
		b = wire.AppendRequest(b, 2, &id, commitReq(g, second))
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		for want := int32(1); want <= 2; want++ {
			frame, err := wire.ReadFrame(br, 1<<20, nil)
			noErr(t, "read a response", err)
			if corr, _ := wire.ResponseCorrelation(frame); corr != want {
				t.Fatalf("response correlation %d, want %d", corr, want)
			}
			resp, err := wire.DecodeResponse(int16(kmsg.OffsetCommit), 8, frame)
			noErr(t, "decode a response", err)
			if code := resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Errorf("round %d: commit %d: %v", round, want, kerr.ErrorForCode(code))
			}
		}
		conn.Close()
		if at, code := fetch(g); code != 0 || at != second {
			t.Errorf("round %d: after commits of %d then %d: offset %d, %v", round, first, second, at, kerr.ErrorForCode(code))
		}
	}
}

// TestKafkaFetchRecordsNeverNull: a partition left out of a fetch answer
// for the client's MaxBytes (the parts of several brokers together were
// over it) has empty records, as a broker sends, not null: kafka-python's
// consumer crashed on null ("object of type 'NoneType' has no len()").
func TestKafkaFetchRecordsNeverNull(t *testing.T) {
	e := newKafkaEnv(t)
	e.createTopic("fetchnull", 6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := e.client(kgo.DefaultProduceTopic("fetchnull"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := range int32(6) {
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: i, Value: bytes.Repeat([]byte("B"), 200_000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offsets := map[int32]int64{}
	for i := range int32(6) {
		offsets[i] = 0
	}
	for _, version := range []int16{4, 11} {
		req := fetchRequest("fetchnull", 500, offsets)
		req.Version = version
		req.MinBytes = 1 << 20 // every broker's part in (kfake answers at MinBytes or MaxWait)
		req.MaxBytes = 5000
		left := 0
		for _, rt := range raw(t, e.addr, req).(*kmsg.FetchResponse).Topics {
			for _, rp := range rt.Partitions {
				if rp.RecordBatches == nil {
					t.Errorf("Fetch v%d: partition %d has null records", version, rp.Partition)
				}
				if len(rp.RecordBatches) == 0 {
					left++
				}
			}
		}
		if left == 0 {
			t.Errorf("Fetch v%d: every partition answered within MaxBytes 5000: the test tests nothing", version)
		}
	}
}
