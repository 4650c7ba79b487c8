package wire

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzParseRequest feeds arbitrary bytes to the frame reader and request
// decoder: they must never panic, never read past a frame, and what they
// accept must re-encode to a frame that decodes to the same encoding.
func FuzzParseRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	id := "fuzz"
	for _, req := range []kmsg.Request{
		&kmsg.FetchRequest{Version: 12, SessionEpoch: -1, Topics: []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{}}}}},
		&kmsg.FindCoordinatorRequest{Version: 4, CoordinatorKeys: []string{"g"}},
		&kmsg.ControlledShutdownRequest{Version: 0},
		&kmsg.OffsetFetchRequest{Version: 8, Groups: []kmsg.OffsetFetchRequestGroup{{Group: "g"}}},
	} {
		f.Add(AppendRequest(nil, 1, &id, req))
	}
	f.Add([]byte{0, 0, 0, 4, 0x7f, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		frame, err := ReadFrame(bufio.NewReader(bytes.NewReader(data)), 1<<20, nil)
		if err != nil {
			return
		}
		if len(frame) > len(data)-4 {
			t.Fatalf("frame of %d bytes from %d input bytes", len(frame), len(data))
		}
		h, req, err := ParseRequest(frame)
		if err != nil {
			return
		}
		once := AppendRequest(nil, h.Correlation, h.ClientID, req)
		h2, req2, err := ParseRequest(once[4:])
		if err != nil {
			t.Fatalf("%s v%d: re-encoded request does not parse: %v", kmsg.NameForKey(h.Key), h.Version, err)
		}
		if h2.Key != h.Key || h2.Version != h.Version || h2.Correlation != h.Correlation {
			t.Fatalf("header changed: %+v -> %+v", h, h2)
		}
		if twice := AppendRequest(nil, h2.Correlation, h2.ClientID, req2); !bytes.Equal(once, twice) {
			t.Fatalf("%s v%d: encoding not stable", kmsg.NameForKey(h.Key), h.Version)
		}
	})
}

// FuzzDecodeResponse: backend responses must not panic the decoder.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(int16(1), int16(12), AppendResponse(nil, 1, &kmsg.FetchResponse{Version: 12})[4:])
	f.Add(int16(0), int16(9), AppendResponse(nil, 1, &kmsg.ProduceResponse{Version: 9})[4:])
	f.Add(int16(18), int16(3), AppendResponse(nil, 1, &kmsg.ApiVersionsResponse{Version: 3})[4:])
	f.Fuzz(func(t *testing.T, key, version int16, frame []byte) {
		if r := kmsg.RequestForKey(key); r == nil || version < 0 || version > r.MaxVersion() {
			return
		}
		_, _ = DecodeResponse(key, version, frame)
	})
}
