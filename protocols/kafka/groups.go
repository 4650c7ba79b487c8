package kafka

import (
	"log/slog"
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator types of FindCoordinator.
const (
	coordGroup int8 = 0
	coordTxn   int8 = 1
)

func coordinatorMoved(code int16) bool {
	return code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code
}

// toCoordinator forwards a request about one group (typ 0) or
// transactional id (typ 1) to that key's real coordinator, found by the
// ambassador's own FindCoordinator (cached; a miss asks the backend before
// the connection's next request is read, so requests still reach brokers
// in order).
//
// NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE in the answer (the
// coordinator moved since it was cached) drops the cached coordinator and
// sends the request once more, to the coordinator the backend names now:
// the broker did not act on it, and a client that asked FindCoordinator
// just before (KafkaJS does before each commit) does not expect to be
// told its coordinator is wrong. The retries, and the client's coordinator
// requests that come while any is pending, run one after another in
// order, so that two commits still reach the coordinator in the order the
// client sent them.
func (c *clientConn) toCoordinator(r *request, typ int8, key string) {
	c.rmu.Lock()
	if c.retrying {
		c.retryQ = append(c.retryQ, func() { c.sendToCoordinator(r, typ, key, true) })
		c.rmu.Unlock()
		return
	}
	c.rmu.Unlock()
	c.sendToCoordinator(r, typ, key, true)
}

func (c *clientConn) sendToCoordinator(r *request, typ int8, key string, retry bool) {
	id, code := c.f.be.coordinator(c.ctx, typ, key)
	if code != 0 {
		r.respondError(code)
		return
	}
	if id < 0 {
		c.f.m.errorf(r.h.Key, "routing")
		r.respondError(kerr.NotCoordinator.Code)
		return
	}
	c.send(id, laneMain, r.h.ClientID, r.req, r.hold, func(resp kmsg.Response, err error) {
		if err != nil {
			c.f.m.errorf(r.h.Key, "backend")
			r.respondError(kerr.NotCoordinator.Code)
			return
		}
		moved := false
		var first int16
		errorCodes(resp, func(code int16) {
			moved = moved || coordinatorMoved(code)
			if first == 0 {
				first = code
			}
		})
		if c.log.Enabled(c.ctx, slog.LevelDebug) {
			c.log.Debug("coordinator request", "api", apiName(r.h.Key), "key", key, "broker", id, "error", kerr.ErrorForCode(first), "retry", retry)
		}
		if moved {
			c.f.be.forgetCoordinator(typ, key)
			if retry {
				c.inOrder(func() { c.sendToCoordinator(r, typ, key, false) })
				return
			}
		}
		r.respond(resp)
	})
}

// inOrder runs fn after the functions queued before it, on a goroutine
// of the client's (a coordinator look-up may wait on the backend; the
// broker connection's reader that called must not).
func (c *clientConn) inOrder(fn func()) {
	c.rmu.Lock()
	c.retryQ = append(c.retryQ, fn)
	if c.retrying {
		c.rmu.Unlock()
		return
	}
	c.retrying = true
	c.rmu.Unlock()
	c.async(func() {
		for {
			c.rmu.Lock()
			if len(c.retryQ) == 0 {
				c.retrying = false
				c.retryQ = nil
				c.rmu.Unlock()
				return
			}
			next := c.retryQ[0]
			c.retryQ[0] = nil
			c.retryQ = c.retryQ[1:]
			c.rmu.Unlock()
			next()
		}
	})
}

// splitByCoordinator routes a request that batches groups or
// transactional ids (DescribeGroups, DeleteGroups, OffsetFetch v8+,
// ConsumerGroupDescribe, DescribeTransactions): one part per coordinator,
// answers merged in request order. reqField is the request's list (of
// strings, or of structs whose keyField names the key); respField the
// response's list, whose items carry the key in keyField.
func (c *clientConn) splitByCoordinator(r *request, typ int8, reqField, respField, keyField string) {
	rv := reflect.ValueOf(r.req).Elem()
	items := rv.FieldByName(reqField)
	keyOf := func(v reflect.Value) string {
		if v.Kind() == reflect.String {
			return v.String()
		}
		return v.FieldByName(keyField).String()
	}
	keys := make([]string, items.Len())
	for i := range keys {
		keys[i] = keyOf(items.Index(i))
	}
	res := c.f.be.coordinators(c.ctx, typ, keys)
	byBroker := map[int32]reflect.Value{}
	var parts []*part
	for i, k := range keys {
		x := res[k]
		if x.code != 0 {
			continue
		}
		preq, ok := byBroker[x.node]
		if !ok {
			preq = reflect.New(rv.Type())
			preq.Elem().Set(rv)
			preq.Elem().FieldByName(reqField).Set(reflect.MakeSlice(items.Type(), 0, 1))
			byBroker[x.node] = preq
			parts = append(parts, &part{broker: x.node, req: preq.Interface().(kmsg.Request)})
		}
		f := preq.Elem().FieldByName(reqField)
		f.Set(reflect.Append(f, items.Index(i)))
	}
	c.scatter(r, laneMain, parts, func(parts []*part) {
		resp := r.req.ResponseKind()
		resp.SetVersion(r.h.Version)
		out := reflect.ValueOf(resp).Elem()
		list := out.FieldByName(respField)
		// A key named twice (OffsetFetch of one group about two sets of
		// topics) is answered twice, in order: each request entry takes
		// the next answer for its key. A broker that collapses
		// duplicates into one answer has it repeated.
		got := map[string][]reflect.Value{}
		var throttle int32
		for _, p := range parts {
			if p.err != nil {
				continue
			}
			if tr, ok := p.resp.(kmsg.ThrottleResponse); ok {
				ms, _ := tr.Throttle()
				throttle = max(throttle, ms)
			}
			pl := reflect.ValueOf(p.resp).Elem().FieldByName(respField)
			for j := 0; j < pl.Len(); j++ {
				it := pl.Index(j)
				k := it.FieldByName(keyField).String()
				got[k] = append(got[k], it)
				moved := false
				eachField(it, "ErrorCode", func(f reflect.Value) { moved = moved || coordinatorMoved(int16(f.Int())) })
				if moved {
					c.f.be.forgetCoordinator(typ, k)
				}
			}
		}
		for _, k := range keys {
			if q := got[k]; len(q) > 0 {
				list.Set(reflect.Append(list, q[0]))
				if len(q) > 1 {
					got[k] = q[1:]
				}
				continue
			}
			code := res[k].code
			if code == 0 {
				code = kerr.NotCoordinator.Code // its coordinator's connection failed
				c.f.be.forgetCoordinator(typ, k)
			}
			it := reflect.New(list.Type().Elem()).Elem()
			if d := it.Addr().MethodByName("Default"); d.IsValid() {
				d.Call(nil)
			}
			it.FieldByName(keyField).SetString(k)
			setErrors(it, code)
			list.Set(reflect.Append(list, it))
		}
		if st, ok := resp.(kmsg.SetThrottleResponse); ok {
			st.SetThrottle(throttle)
		}
		r.respond(resp)
	})
}

// fanOut sends the request to every broker and concatenates the answers'
// lists (ListGroups, ListTransactions). A broker that fails makes the
// top-level error COORDINATOR_NOT_AVAILABLE (retriable), so that a
// partial list is never passed off as the whole.
func (c *clientConn) fanOut(r *request) {
	s := c.f.be.current()
	parts := make([]*part, 0, len(s.ids))
	for _, id := range s.ids {
		parts = append(parts, &part{broker: id, req: r.req})
	}
	if len(parts) == 0 {
		c.f.m.errorf(r.h.Key, "routing")
		r.respondError(kerr.CoordinatorNotAvailable.Code)
		return
	}
	c.scatter(r, laneMain, parts, func(parts []*part) {
		resp := r.req.ResponseKind()
		resp.SetVersion(r.h.Version)
		out := reflect.ValueOf(resp).Elem()
		var throttle int32
		var code int16
		seen := map[string]bool{}
		for _, p := range parts {
			if p.err != nil {
				code = kerr.CoordinatorNotAvailable.Code
				continue
			}
			if tr, ok := p.resp.(kmsg.ThrottleResponse); ok {
				ms, _ := tr.Throttle()
				throttle = max(throttle, ms)
			}
			pv := reflect.ValueOf(p.resp).Elem()
			if ec := pv.FieldByName("ErrorCode"); ec.IsValid() && ec.Int() != 0 && code == 0 {
				code = int16(ec.Int())
			}
			for i := 0; i < pv.NumField(); i++ {
				f := pv.Field(i)
				if f.Kind() != reflect.Slice || pv.Type().Field(i).Name == "UnknownTags" {
					continue
				}
				name := pv.Type().Field(i).Name
				of := out.FieldByName(name)
				for j := 0; j < f.Len(); j++ {
					it := f.Index(j)
					key := ""
					switch it.Kind() {
					case reflect.String: // e.g. UnknownStateFilters: a set
						key = it.String()
					case reflect.Struct: // a group or transaction: listed once, though
						// two brokers may both hold it while its coordinator moves
						for _, id := range []string{"Group", "TransactionalID"} {
							if f := it.FieldByName(id); f.IsValid() && f.Kind() == reflect.String {
								key = f.String()
								break
							}
						}
					}
					if key != "" {
						if seen[name+"\x00"+key] {
							continue
						}
						seen[name+"\x00"+key] = true
					}
					of.Set(reflect.Append(of, it))
				}
			}
		}
		if ec := out.FieldByName("ErrorCode"); ec.IsValid() {
			ec.SetInt(int64(code))
		}
		if st, ok := resp.(kmsg.SetThrottleResponse); ok {
			st.SetThrottle(throttle)
		}
		r.respond(resp)
	})
}
