package kafka

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// splitByLeader routes the partition requests that share one shape,
// Topics[].Topic with Partitions[] (structs with a Partition field, or
// bare int32s): ListOffsets, OffsetForLeaderEpoch, DeleteRecords and
// DescribeProducers. Each leader gets a copy of the request holding its
// partitions; the answers are merged in request order, and partitions
// whose leader is unknown or whose leader's connection failed get a
// retriable error. These requests are not on the hot path, so the split
// and merge go through reflection once for all four types.
func (c *clientConn) splitByLeader(r *request) {
	s := c.f.be.current()
	rv := reflect.ValueOf(r.req).Elem()
	topics := rv.FieldByName("Topics")

	type ref struct {
		topic string
		part  int32
		code  int16
	}
	var refs [][]ref // per topic, per partition
	byBroker := map[int32]reflect.Value{}
	var parts []*part
	stale := false
	for i := 0; i < topics.Len(); i++ {
		t := topics.Index(i)
		name := t.FieldByName("Topic").String()
		ps := t.FieldByName("Partitions")
		rs := make([]ref, ps.Len())
		for j := 0; j < ps.Len(); j++ {
			pv := ps.Index(j)
			pnum := partitionOf(pv)
			l, code := s.leader(name, [16]byte{}, false, pnum)
			rs[j] = ref{name, pnum, code}
			if code != 0 {
				stale = true
				continue
			}
			preq, ok := byBroker[l]
			if !ok {
				preq = reflect.New(rv.Type())
				preq.Elem().Set(rv)
				preq.Elem().FieldByName("Topics").Set(reflect.MakeSlice(topics.Type(), 0, 1))
				byBroker[l] = preq
				parts = append(parts, &part{broker: l, req: preq.Interface().(kmsg.Request)})
			}
			pt := preq.Elem().FieldByName("Topics")
			if n := pt.Len(); n == 0 || pt.Index(n-1).FieldByName("Topic").String() != name {
				nt := reflect.New(topics.Type().Elem()).Elem()
				nt.Set(t)
				nt.FieldByName("Partitions").Set(reflect.MakeSlice(ps.Type(), 0, 1))
				pt.Set(reflect.Append(pt, nt))
			}
			last := pt.Index(pt.Len() - 1).FieldByName("Partitions")
			last.Set(reflect.Append(last, pv))
		}
		refs = append(refs, rs)
	}
	if stale {
		c.f.be.triggerRefresh()
	}
	c.scatter(r, laneMain, parts, func(parts []*part) {
		resp := r.req.ResponseKind()
		resp.SetVersion(r.h.Version)
		out := reflect.ValueOf(resp).Elem()
		otopics := out.FieldByName("Topics")
		type key struct {
			topic string
			part  int32
		}
		// A partition named twice is answered per entry, in order, as
		// its leader answered each (one answer is repeated).
		got := map[key][]reflect.Value{}
		var throttle int32
		stale := false
		for _, p := range parts {
			if p.err != nil {
				stale = true
				continue
			}
			if tr, ok := p.resp.(kmsg.ThrottleResponse); ok {
				ms, _ := tr.Throttle()
				throttle = max(throttle, ms)
			}
			errorCodes(p.resp, func(code int16) { stale = stale || staleCode(code) })
			rts := reflect.ValueOf(p.resp).Elem().FieldByName("Topics")
			for i := 0; i < rts.Len(); i++ {
				rt := rts.Index(i)
				name := rt.FieldByName("Topic").String()
				rps := rt.FieldByName("Partitions")
				for j := 0; j < rps.Len(); j++ {
					k := key{name, int32(rps.Index(j).FieldByName("Partition").Int())}
					got[k] = append(got[k], rps.Index(j))
				}
			}
		}
		for i, rs := range refs {
			nt := reflect.New(otopics.Type().Elem()).Elem()
			if d := nt.Addr().MethodByName("Default"); d.IsValid() {
				d.Call(nil)
			}
			nt.FieldByName("Topic").SetString(topics.Index(i).FieldByName("Topic").String())
			nps := nt.FieldByName("Partitions")
			for _, rf := range rs {
				if rf.code == 0 {
					if q := got[key{rf.topic, rf.part}]; len(q) > 0 {
						nps.Set(reflect.Append(nps, q[0]))
						if len(q) > 1 {
							got[key{rf.topic, rf.part}] = q[1:]
						}
						continue
					}
					rf.code = kerr.NotLeaderForPartition.Code
				}
				ep := reflect.New(nps.Type().Elem()).Elem()
				if d := ep.Addr().MethodByName("Default"); d.IsValid() {
					d.Call(nil)
				}
				ep.FieldByName("Partition").SetInt(int64(rf.part))
				setErrors(ep, rf.code)
				nps.Set(reflect.Append(nps, ep))
			}
			otopics.Set(reflect.Append(otopics, nt))
		}
		if st, ok := resp.(kmsg.SetThrottleResponse); ok {
			st.SetThrottle(throttle)
		}
		if stale {
			c.f.be.triggerRefresh()
		}
		r.respond(resp)
	})
}

func partitionOf(v reflect.Value) int32 {
	if v.Kind() == reflect.Int32 {
		return int32(v.Int())
	}
	return int32(v.FieldByName("Partition").Int())
}
