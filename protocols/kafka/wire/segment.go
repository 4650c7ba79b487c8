package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SegmentMin is the size from which a byte field (a record batch set) is
// written as its own segment rather than copied into the frame.
const SegmentMin = 4 << 10

const markerLen = 16

// Segmented is a frame as a list of segments, to be written with one
// writev: the encoded message with its large byte fields (record batches)
// left in place, in the buffers they were read into.
type Segmented struct {
	Bufs net.Buffers
	Len  int // total bytes, size prefix included
}

// AppendSegmentedResponse encodes a response frame like AppendResponse,
// but leaves the given byte fields of resp (its record batches) out of the
// copy: they become segments of their own. fields point into resp.
func AppendSegmentedResponse(scratch []byte, corr int32, resp kmsg.Response, fields []*[]byte) Segmented {
	return segment(scratch, resp.IsFlexible(), fields, func(dst []byte) []byte {
		return AppendResponse(dst, corr, resp)
	})
}

// AppendSegmentedRequest encodes a request frame like AppendRequest, with
// the given byte fields of req (its record batches) as segments of their
// own.
func AppendSegmentedRequest(scratch []byte, corr int32, clientID *string, req kmsg.Request, fields []*[]byte) Segmented {
	return segment(scratch, req.IsFlexible(), fields, func(dst []byte) []byte {
		return AppendRequest(dst, corr, clientID, req)
	})
}

// segment encodes with each large field swapped for a unique marker of
// markerLen bytes, then cuts the encoding at the markers: the bytes before
// a marker (less its length prefix), a fresh length prefix, the field
// itself, and so on. kmsg writes a bytes field as its length (int32, or a
// uvarint of length+1 in flexible versions) followed by the bytes, so the
// marker's prefix is 4 bytes, or 1 (the uvarint of 17).
func segment(scratch []byte, flexible bool, fields []*[]byte, encode func([]byte) []byte) Segmented {
	var nonce [8]byte
	big := 0
	for _, f := range fields {
		if len(*f) >= SegmentMin {
			big++
		}
	}
	if big == 0 {
		b := encode(scratch[:0])
		return Segmented{Bufs: net.Buffers{b}, Len: len(b)}
	}
	_, _ = rand.Read(nonce[:])
	orig := make([][]byte, len(fields))
	markers := make([]byte, 0, big*markerLen)
	for i, f := range fields {
		orig[i] = *f
		if len(*f) < SegmentMin {
			continue
		}
		at := len(markers)
		markers = append(markers, nonce[:]...)
		markers = binary.BigEndian.AppendUint64(markers, uint64(i))
		*f = markers[at : at+markerLen : at+markerLen]
	}
	enc := encode(scratch[:0])
	for i, f := range fields {
		*f = orig[i]
	}
	prefix := 4
	if flexible {
		prefix = 1
	}
	out := Segmented{Bufs: make(net.Buffers, 0, 3*big+1)}
	var lens []byte // length prefixes, kept apart from enc
	pos, m := 0, 0
	for _, f := range fields {
		if len(*f) < SegmentMin {
			continue
		}
		mk := markers[m*markerLen : (m+1)*markerLen]
		m++
		i := bytes.Index(enc[pos:], mk)
		if i < prefix { // cannot happen: every marker was encoded
			panic("kafka wire: segment marker not found")
		}
		i += pos
		out.Bufs = append(out.Bufs, enc[pos:i-prefix])
		at := len(lens)
		if flexible {
			lens = kbin.AppendUvarint(lens, uint32(len(*f)+1))
		} else {
			lens = kbin.AppendInt32(lens, int32(len(*f)))
		}
		out.Bufs = append(out.Bufs, lens[at:len(lens):len(lens)], *f)
		pos = i + markerLen
	}
	out.Bufs = append(out.Bufs, enc[pos:])
	for _, b := range out.Bufs {
		out.Len += len(b)
	}
	binary.BigEndian.PutUint32(out.Bufs[0], uint32(out.Len-4))
	return out
}

// FetchRecordFields returns pointers to the record batches of a fetch
// response, for AppendSegmentedResponse.
func FetchRecordFields(resp *kmsg.FetchResponse) []*[]byte {
	var n int
	for i := range resp.Topics {
		n += len(resp.Topics[i].Partitions)
	}
	out := make([]*[]byte, 0, n)
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			out = append(out, &resp.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return out
}

// ProduceRecordFields returns pointers to the record batches of a produce
// request, for AppendSegmentedRequest.
func ProduceRecordFields(req *kmsg.ProduceRequest) []*[]byte {
	var n int
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	out := make([]*[]byte, 0, n)
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			out = append(out, &req.Topics[i].Partitions[j].Records)
		}
	}
	return out
}
