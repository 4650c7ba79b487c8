package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of the codec. Callers match them with errors.Is.
var (
	// ErrTooLarge is a frame whose size prefix exceeds the limit.
	ErrTooLarge = errors.New("kafka wire: frame larger than the limit")
	// ErrMalformed is a frame or header that does not parse.
	ErrMalformed = errors.New("kafka wire: malformed frame")
	// ErrNoBuffer is a frame whose buffer the caller's alloc did not give
	// (it gave up waiting for memory: the connection is closing).
	ErrNoBuffer = errors.New("kafka wire: no buffer for the frame")
	// ErrUnknownKey is an API key that kmsg does not know.
	ErrUnknownKey = errors.New("kafka wire: unknown api key")
	// ErrUnknownVersion is a version above the newest kmsg knows for the key.
	ErrUnknownVersion = errors.New("kafka wire: unknown api version")
)

// MinHeaderLen is the smallest request header: key, version, correlation id.
const MinHeaderLen = 8

// ReadFrame reads one size-prefixed frame from r and returns its body (the
// bytes after the size). A size above max returns ErrTooLarge before any
// body byte is read; a negative or too small size returns ErrMalformed.
// buf is reused when it is large enough.
func ReadFrame(r *bufio.Reader, max int32, buf []byte) ([]byte, error) {
	return ReadFrameAlloc(r, max, func(n int) []byte {
		if cap(buf) >= n {
			return buf[:n]
		}
		return make([]byte, n)
	})
}

// ReadFrameAlloc is ReadFrame with the body's buffer from alloc (a pool),
// which must return a slice of length n.
func ReadFrameAlloc(r *bufio.Reader, max int32, alloc func(n int) []byte) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrMalformed, n)
	}
	if n > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	buf := alloc(int(n))
	if len(buf) != int(n) {
		return nil, ErrNoBuffer
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// FrameSize returns the size prefix of a frame that starts b, and whether b
// holds at least the 4 size bytes.
func FrameSize(b []byte) (int32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return int32(binary.BigEndian.Uint32(b)), true
}

// RequestHeader is a parsed request header (v0, v1 or v2).
type RequestHeader struct {
	Key         int16
	Version     int16
	Correlation int32
	// ClientID is nil when the client sent a null id (or header v0).
	ClientID *string
}

// HeaderFlexible reports whether a request of key and version uses the
// flexible request header (v2). Unknown keys report false.
func HeaderFlexible(key, version int16) bool {
	r := kmsg.RequestForKey(key)
	if r == nil {
		return false
	}
	r.SetVersion(version)
	return r.IsFlexible()
}

// ParseRequestHeader parses the header at the start of a frame body and
// returns it with the request body that follows. An unknown key still
// returns its header (parsed as v1) along with ErrUnknownKey, so that the
// caller can name it in a log line.
func ParseRequestHeader(frame []byte) (RequestHeader, []byte, error) {
	var h RequestHeader
	if len(frame) < MinHeaderLen {
		return h, nil, fmt.Errorf("%w: %d-byte request header", ErrMalformed, len(frame))
	}
	h.Key = int16(binary.BigEndian.Uint16(frame))
	h.Version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.Correlation = int32(binary.BigEndian.Uint32(frame[4:]))
	if h.Key == 7 && h.Version == 0 { // ControlledShutdown v0: header v0
		return h, frame[8:], nil
	}
	b := kbin.Reader{Src: frame[8:]}
	h.ClientID = b.NullableString()
	if !b.Ok() {
		return h, nil, fmt.Errorf("%w: bad client id", ErrMalformed)
	}
	req := kmsg.RequestForKey(h.Key)
	if req == nil {
		return h, b.Src, fmt.Errorf("%w %d", ErrUnknownKey, h.Key)
	}
	req.SetVersion(h.Version)
	if req.IsFlexible() {
		kmsg.SkipTags(&b)
		if !b.Ok() {
			return h, nil, fmt.Errorf("%w: bad header tags", ErrMalformed)
		}
	}
	return h, b.Src, nil
}

// DecodeRequest parses a request body of the header's key and version.
// Record batches in it are slices of body, not copies.
func DecodeRequest(h RequestHeader, body []byte) (kmsg.Request, error) {
	req := kmsg.RequestForKey(h.Key)
	if req == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownKey, h.Key)
	}
	if h.Version < 0 || h.Version > req.MaxVersion() {
		return nil, fmt.Errorf("%w: %s v%d (newest known v%d)", ErrUnknownVersion, kmsg.NameForKey(h.Key), h.Version, req.MaxVersion())
	}
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", ErrMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	return req, nil
}

// ParseRequest parses a whole frame body: header and request.
func ParseRequest(frame []byte) (RequestHeader, kmsg.Request, error) {
	h, body, err := ParseRequestHeader(frame)
	if err != nil {
		return h, nil, err
	}
	req, err := DecodeRequest(h, body)
	return h, req, err
}

// AppendRequest appends a size-prefixed request frame to dst: header v0,
// v1 or v2 as the request's key and version need, then the body.
func AppendRequest(dst []byte, corr int32, clientID *string, req kmsg.Request) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt16(dst, req.Key())
	dst = kbin.AppendInt16(dst, req.GetVersion())
	dst = kbin.AppendInt32(dst, corr)
	if !(req.Key() == 7 && req.GetVersion() == 0) {
		dst = kbin.AppendNullableString(dst, clientID)
		if req.IsFlexible() {
			dst = append(dst, 0) // no header tags
		}
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// ResponseHeaderFlexible reports whether a response uses header v1 (with
// tags): flexible responses do, except ApiVersions, whose response header
// is always v0 so that clients can read it before they know the version.
func ResponseHeaderFlexible(resp kmsg.Response) bool {
	return resp.IsFlexible() && resp.Key() != 18
}

// AppendResponse appends a size-prefixed response frame to dst.
func AppendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, corr)
	if ResponseHeaderFlexible(resp) {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// ResponseCorrelation returns the correlation id at the start of a response
// frame body.
func ResponseCorrelation(frame []byte) (int32, error) {
	if len(frame) < 4 {
		return 0, fmt.Errorf("%w: %d-byte response", ErrMalformed, len(frame))
	}
	return int32(binary.BigEndian.Uint32(frame)), nil
}

// DecodeResponse parses a response frame body (correlation id, header
// tags, body) of the given key and version. Record batches in it are
// slices of frame.
func DecodeResponse(key, version int16, frame []byte) (kmsg.Response, error) {
	resp := kmsg.ResponseForKey(key)
	if resp == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownKey, key)
	}
	resp.SetVersion(version)
	if len(frame) < 4 {
		return nil, fmt.Errorf("%w: %d-byte response", ErrMalformed, len(frame))
	}
	body := frame[4:]
	if ResponseHeaderFlexible(resp) {
		b := kbin.Reader{Src: body}
		kmsg.SkipTags(&b)
		if !b.Ok() {
			return nil, fmt.Errorf("%w: bad response header tags", ErrMalformed)
		}
		body = b.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: %s v%d response: %v", ErrMalformed, kmsg.NameForKey(key), version, err)
	}
	return resp, nil
}
