package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseRequestHeader(t *testing.T) {
	id := "client-1"
	cases := []struct {
		name     string
		req      kmsg.Request
		clientID *string
		wantID   *string
		wantErr  error
	}{
		{"v0 header (ControlledShutdown v0)", &kmsg.ControlledShutdownRequest{Version: 0, BrokerID: 3}, &id, nil, nil},
		{"v1 header", &kmsg.MetadataRequest{Version: 1}, &id, &id, nil},
		{"v1 header null client id", &kmsg.MetadataRequest{Version: 1}, nil, nil, nil},
		{"v2 header (flexible)", &kmsg.MetadataRequest{Version: 9}, &id, &id, nil},
		{"ApiVersions v3 uses v2", &kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "a", ClientSoftwareVersion: "1"}, &id, &id, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frame := AppendRequest(nil, 42, c.clientID, c.req)
			if n, _ := FrameSize(frame); int(n) != len(frame)-4 {
				t.Fatalf("size prefix %d for a %d-byte frame", n, len(frame))
			}
			h, req, err := ParseRequest(frame[4:])
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if h.Key != c.req.Key() || h.Version != c.req.GetVersion() || h.Correlation != 42 {
				t.Fatalf("header %+v", h)
			}
			if (h.ClientID == nil) != (c.wantID == nil) || h.ClientID != nil && *h.ClientID != *c.wantID {
				t.Fatalf("client id %v, want %v", h.ClientID, c.wantID)
			}
			if !bytes.Equal(AppendRequest(nil, 42, h.ClientID, req), frame) && c.wantID != nil {
				t.Fatalf("re-encoding differs")
			}
		})
	}
}

func TestParseRequestHeaderErrors(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"short", []byte{0, 3, 0}, ErrMalformed},
		{"unknown key", []byte{0x7f, 0x01, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, ErrUnknownKey},
		{"client id past the end", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 9, 'a'}, ErrMalformed},
		{"missing header tags", []byte{0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff}, ErrMalformed},
	}
	for _, c := range cases {
		if _, _, err := ParseRequestHeader(c.frame); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := DecodeRequest(RequestHeader{Key: 3, Version: 99}, nil); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("Metadata v99: %v, want ErrUnknownVersion", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, int32(200<<20))
	b.WriteString("just a few bytes")
	if _, err := ReadFrame(bufio.NewReader(&b), 100<<20, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	b.Reset()
	_ = binary.Write(&b, binary.BigEndian, int32(-5))
	if _, err := ReadFrame(bufio.NewReader(&b), 100<<20, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("negative size: %v", err)
	}
	b.Reset()
	_ = binary.Write(&b, binary.BigEndian, int32(10))
	b.WriteString("short")
	if _, err := ReadFrame(bufio.NewReader(&b), 100<<20, nil); err == nil {
		t.Fatal("truncated frame read without error")
	}
}

// TestRoundTripEveryKeyAndVersion encodes a default request and response of
// every API key at every version kmsg knows and parses them back.
func TestRoundTripEveryKeyAndVersion(t *testing.T) {
	id := "rt"
	n := 0
	for key := int16(0); key < 128; key++ {
		proto := kmsg.RequestForKey(key)
		if proto == nil {
			continue
		}
		for v := int16(0); v <= proto.MaxVersion(); v++ {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			frame := AppendRequest(nil, int32(v), &id, req)
			h, got, err := ParseRequest(frame[4:])
			if err != nil {
				t.Fatalf("%s v%d request: %v", kmsg.NameForKey(key), v, err)
			}
			if h.Key != key || h.Version != v || !bytes.Equal(AppendRequest(nil, int32(v), &id, got), frame) {
				t.Fatalf("%s v%d request does not round-trip", kmsg.NameForKey(key), v)
			}
			resp := req.ResponseKind()
			rframe := AppendResponse(nil, 9, resp)
			corr, _ := ResponseCorrelation(rframe[4:])
			back, err := DecodeResponse(key, v, rframe[4:])
			if err != nil || corr != 9 {
				t.Fatalf("%s v%d response: %v (corr %d)", kmsg.NameForKey(key), v, err, corr)
			}
			if !bytes.Equal(AppendResponse(nil, 9, back), rframe) {
				t.Fatalf("%s v%d response does not round-trip", kmsg.NameForKey(key), v)
			}
			n++
		}
	}
	t.Logf("%d key/version pairs", n)
}

// TestGoldenFrames parses frames captured from kcat and franz-go and checks
// that re-encoding reproduces them byte for byte.
func TestGoldenFrames(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bin")
	if err != nil || len(files) < 6 {
		t.Fatalf("golden frames: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := ReadFrame(bufio.NewReader(bytes.NewReader(data)), 1<<20, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		h, req, err := ParseRequest(frame)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		base := filepath.Base(f)
		if want := kmsg.NameForKey(h.Key); !strings.Contains(base, "-"+want+"-") {
			t.Errorf("%s parsed as %s", f, want)
		}
		switch {
		case strings.HasPrefix(base, "kcat") && (h.ClientID == nil || *h.ClientID != "rdkafka"):
			t.Errorf("%s: client id %v", f, h.ClientID)
		case strings.HasPrefix(base, "kgo") && (h.ClientID == nil || *h.ClientID != "golden-kgo"):
			t.Errorf("%s: client id %v", f, h.ClientID)
		}
		if got := AppendRequest(nil, h.Correlation, h.ClientID, req); !bytes.Equal(got, data) {
			t.Errorf("%s: re-encoded %d bytes differ from the %d captured", f, len(got), len(data))
		}
		if pr, ok := req.(*kmsg.ProduceRequest); ok {
			recs := pr.Topics[0].Partitions[0].Records
			if len(recs) < 61 || recs[16] != 2 {
				t.Errorf("%s: no v2 record batch", f)
			} else if codec := binary.BigEndian.Uint16(recs[21:]) & 7; codec == 0 {
				t.Errorf("%s: the captured batch is not compressed", f)
			}
			// the batch is a slice of the frame: no copy was made
			if &recs[0] != &frame[len(frame)-len(recs)-tailLen(pr)] {
				t.Errorf("%s: records were copied out of the frame", f)
			}
		}
	}
}

// tailLen is what follows the records of the last partition of a produce
// request (flexible versions end partitions, topics and the request with
// an empty tag section each).
func tailLen(pr *kmsg.ProduceRequest) int {
	if pr.IsFlexible() {
		return 3
	}
	return 0
}

// TestSegmentedEqualsEncoding checks that the segments of a fetch response
// or produce request, joined, are exactly kmsg's encoding, in every
// version, and that large record sets are not copied.
func TestSegmentedEqualsEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := func() []byte {
		n := []int{0, 10, SegmentMin - 1, SegmentMin, 64 << 10, 300 << 10}[rng.IntN(6)]
		if n == 0 {
			return nil
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for v := int16(4); v <= 18; v++ {
		for range 20 {
			resp := &kmsg.FetchResponse{Version: v, ThrottleMillis: 5, SessionID: 0}
			for ti := range 1 + rng.IntN(3) {
				rt := kmsg.FetchResponseTopic{Topic: "t" + string(rune('a'+ti)), TopicID: [16]byte{byte(ti + 1)}}
				for p := range 1 + rng.IntN(4) {
					rp := kmsg.NewFetchResponseTopicPartition()
					rp.Partition = int32(p)
					rp.HighWatermark = int64(rng.IntN(1000))
					rp.RecordBatches = big()
					if rng.IntN(3) == 0 {
						rp.CurrentLeader.LeaderID = 7
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			if rng.IntN(2) == 0 {
				resp.Brokers = []kmsg.FetchResponseBroker{{NodeID: 7, Host: "h", Port: 9}}
			}
			want := AppendResponse(nil, 77, resp)
			seg := AppendSegmentedResponse(nil, 77, resp, FetchRecordFields(resp))
			if got := bytes.Join(seg.Bufs, nil); !bytes.Equal(got, want) || seg.Len != len(want) {
				t.Fatalf("fetch v%d: segments differ from the encoding (%d vs %d bytes)", v, len(got), len(want))
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if len(rp.RecordBatches) >= SegmentMin && !holds(seg.Bufs, rp.RecordBatches) {
						t.Fatalf("fetch v%d: a %d-byte record set was copied", v, len(rp.RecordBatches))
					}
				}
			}
		}
	}
	id := "p"
	for v := int16(3); v <= 13; v++ {
		for range 20 {
			req := &kmsg.ProduceRequest{Version: v, Acks: -1, TimeoutMillis: 1000}
			for ti := range 1 + rng.IntN(3) {
				rt := kmsg.ProduceRequestTopic{Topic: "t" + string(rune('a'+ti)), TopicID: [16]byte{byte(ti + 1)}}
				for p := range 1 + rng.IntN(4) {
					rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: int32(p), Records: big()})
				}
				req.Topics = append(req.Topics, rt)
			}
			want := AppendRequest(nil, 5, &id, req)
			seg := AppendSegmentedRequest(nil, 5, &id, req, ProduceRecordFields(req))
			if got := bytes.Join(seg.Bufs, nil); !bytes.Equal(got, want) || seg.Len != len(want) {
				t.Fatalf("produce v%d: segments differ from the encoding", v)
			}
		}
	}
}

// holds reports whether one of bufs is b itself (same memory).
func holds(bufs [][]byte, b []byte) bool {
	for _, x := range bufs {
		if len(x) == len(b) && &x[0] == &b[0] {
			return true
		}
	}
	return false
}

func BenchmarkFetchResponseEncode(b *testing.B) {
	resp := &kmsg.FetchResponse{Version: 12}
	for p := range 6 {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = int32(p)
		rp.RecordBatches = make([]byte, 1<<20)
		resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: "bench", Partitions: []kmsg.FetchResponseTopicPartition{rp}})
	}
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(6 << 20)
		for b.Loop() {
			_ = AppendResponse(nil, 1, resp)
		}
	})
	b.Run("segmented", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(6 << 20)
		scratch := make([]byte, 0, 1024)
		for b.Loop() {
			_ = AppendSegmentedResponse(scratch, 1, resp, FetchRecordFields(resp))
		}
	})
}

func BenchmarkParseProduce(b *testing.B) {
	req := &kmsg.ProduceRequest{Version: 9, Acks: -1, TimeoutMillis: 1000}
	for p := range 6 {
		req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: "bench",
			Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: int32(p), Records: make([]byte, 1<<20)}}})
	}
	frame := AppendRequest(nil, 1, nil, req)[4:]
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := ParseRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}
