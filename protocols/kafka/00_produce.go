package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"time"
)

// staleCode reports whether a partition error means the routing is out
// of date (a leader moved, a topic appeared or went): the ambassador then
// refreshes its metadata, and the client, told the retriable error,
// retries.
func staleCode(code int16) bool {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code,
		kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code,
		kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code,
		kerr.KafkaStorageError.Code, kerr.NotCoordinator.Code,
		kerr.CoordinatorNotAvailable.Code, kerr.ReplicaNotAvailable.Code:
		return true
	}
	return false
}

// tpKey names a partition by topic name (versions before topic ids) or id.
type tpKey struct {
	topic string
	id    [16]byte
	part  int32
}

// handleProduce splits a produce request by partition leader, sends the
// parts in parallel (on this client's connection to each leader, so the
// batches of a partition reach it in the order the client sent them) and
// merges the answers in request order. Record batches pass untouched. With
// acks=0 the parts are sent and nothing is awaited.
func (c *clientConn) handleProduce(r *request) {
	req := r.req.(*kmsg.ProduceRequest)
	s := c.f.be.current()
	byID := r.h.Version >= 13

	// Route every partition; the common case is one leader for all.
	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	leaders := make([]int32, 0, n)
	codes := make([]int16, 0, n)
	single, first, anyErr := true, int32(-1), false
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			l, code := s.leader(t.Topic, t.TopicID, byID, t.Partitions[j].Partition)
			leaders = append(leaders, l)
			codes = append(codes, code)
			if code != 0 {
				anyErr = true
				continue
			}
			if first < 0 {
				first = l
			} else if l != first {
				single = false
			}
		}
	}
	if anyErr {
		c.f.be.triggerRefresh()
	}
	dup := n > 1 && refuseDuplicates(req, codes, byID)
	acks0 := req.Acks == 0

	if single && !anyErr && !dup && first >= 0 {
		if acks0 {
			c.send(first, laneMain, r.h.ClientID, req, r.hold, nil)
			r.noResponse()
			return
		}
		c.send(first, laneMain, r.h.ClientID, req, r.hold, func(resp kmsg.Response, err error) {
			if err != nil {
				// The broker's connection failed, maybe after the batches
				// were appended: REQUEST_TIMED_OUT says so (retriable,
				// outcome unknown), where NOT_LEADER_OR_FOLLOWER would
				// also make a client wait for metadata that, through
				// the ambassador, never changes.
				c.f.m.errorf(0, "backend")
				c.f.be.triggerRefresh()
				r.respond(produceErrors(req, kerr.RequestTimedOut.Code))
				return
			}
			pr := resp.(*kmsg.ProduceResponse)
			if c.f.fixProduce(pr) {
				c.f.be.triggerRefresh()
			}
			r.respond(pr)
		})
		return
	}

	// Split by leader.
	var parts []*part
	byBroker := map[int32]*kmsg.ProduceRequest{}
	k := 0
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			l, code := leaders[k], codes[k]
			k++
			if code != 0 {
				continue
			}
			pr := byBroker[l]
			if pr == nil {
				pr = &kmsg.ProduceRequest{Version: req.Version, TransactionID: req.TransactionID, Acks: req.Acks, TimeoutMillis: req.TimeoutMillis}
				byBroker[l] = pr
				parts = append(parts, &part{broker: l, req: pr})
			}
			if nt := len(pr.Topics); nt == 0 || pr.Topics[nt-1].Topic != t.Topic || pr.Topics[nt-1].TopicID != t.TopicID {
				pr.Topics = append(pr.Topics, kmsg.ProduceRequestTopic{Topic: t.Topic, TopicID: t.TopicID})
			}
			pt := &pr.Topics[len(pr.Topics)-1]
			pt.Partitions = append(pt.Partitions, t.Partitions[j])
		}
	}
	if acks0 {
		for _, p := range parts {
			c.send(p.broker, laneMain, r.h.ClientID, p.req, r.hold, nil)
		}
		if anyErr || dup {
			r.closeAfter("acks=0 produce to partitions without a known leader, or named twice")
			return
		}
		r.noResponse()
		return
	}
	// A broker that hangs must not hold the other leaders' partitions
	// past what the client waits: they are answered a little before the
	// request's own timeout (which clients such as Java's use as theirs).
	within := max(time.Duration(req.TimeoutMillis)*time.Millisecond*9/10, time.Second)
	c.scatterWithin(r, laneMain, parts, within, func(parts []*part) { c.mergeProduce(r, req, codes, parts) })
}

// refuseDuplicates marks every entry of a partition named more than once
// in req with INVALID_REQUEST (codes: per partition in request order) and
// reports whether there was one. Such entries are not sent: a broker keeps
// only one of them and answers once, and one answer must never acknowledge
// two batches. Clients name each topic once: partitions are compared within
// a topic entry, and topics with each other, unless a topic repeats.
func refuseDuplicates(req *kmsg.ProduceRequest, codes []int16, byID bool) bool {
	sameTopic := func(a, b *kmsg.ProduceRequestTopic) bool {
		if byID {
			return a.TopicID == b.TopicID
		}
		return a.Topic == b.Topic
	}
	repeated := false
	for i := range req.Topics {
		for j := i + 1; j < len(req.Topics) && !repeated; j++ {
			repeated = sameTopic(&req.Topics[i], &req.Topics[j])
		}
	}
	found := false
	if !repeated {
		k := 0
		for i := range req.Topics {
			ps := req.Topics[i].Partitions
			for a := range ps {
				for b := a + 1; b < len(ps); b++ {
					if ps[a].Partition == ps[b].Partition {
						codes[k+a], codes[k+b] = kerr.InvalidRequest.Code, kerr.InvalidRequest.Code
						found = true
					}
				}
			}
			k += len(ps)
		}
		return found
	}
	firstAt := map[tpKey]int{}
	k := 0
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			key := tpKey{part: t.Partitions[j].Partition}
			if byID {
				key.id = t.TopicID
			} else {
				key.topic = t.Topic
			}
			if f, ok := firstAt[key]; ok {
				codes[f], codes[k] = kerr.InvalidRequest.Code, kerr.InvalidRequest.Code
				found = true
			} else {
				firstAt[key] = k
			}
			k++
		}
	}
	return found
}

// mergeProduce answers a split produce request from its parts' answers,
// in request order; codes holds, per partition in request order, the
// routing error (0 when it was sent). A partition sent whose answer is
// missing (its leader's connection failed, or it did not answer in time)
// gets REQUEST_TIMED_OUT, which the client retries knowing the batch may
// have been appended.
func (c *clientConn) mergeProduce(r *request, req *kmsg.ProduceRequest, codes []int16, parts []*part) {
	n := len(codes)
	got := make(map[tpKey]*kmsg.ProduceResponseTopicPartition, n)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	stale := false
	for _, p := range parts {
		if p.err != nil {
			stale = true
			continue
		}
		pr := p.resp.(*kmsg.ProduceResponse)
		stale = c.f.fixProduce(pr) || stale
		resp.ThrottleMillis = max(resp.ThrottleMillis, pr.ThrottleMillis)
		if len(pr.Brokers) > 0 {
			resp.Brokers = pr.Brokers
		}
		for i := range pr.Topics {
			t := &pr.Topics[i]
			for j := range t.Partitions {
				got[tpKey{t.Topic, t.TopicID, t.Partitions[j].Partition}] = &t.Partitions[j]
			}
		}
	}
	k := 0
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := kmsg.ProduceResponseTopic{Topic: t.Topic, TopicID: t.TopicID}
		for j := range t.Partitions {
			code := codes[k]
			k++
			if code == 0 {
				if p := got[tpKey{t.Topic, t.TopicID, t.Partitions[j].Partition}]; p != nil {
					rt.Partitions = append(rt.Partitions, *p)
					continue
				}
				code = kerr.RequestTimedOut.Code // its leader's connection failed or hung
			}
			rt.Partitions = append(rt.Partitions, produceErrorPartition(t.Partitions[j].Partition, code))
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if stale {
		c.f.be.triggerRefresh()
	}
	r.respond(resp)
}

func produceErrorPartition(p int32, code int16) kmsg.ProduceResponseTopicPartition {
	rp := kmsg.NewProduceResponseTopicPartition()
	rp.Partition = p
	rp.ErrorCode = code
	rp.BaseOffset = -1
	return rp
}

// produceErrors answers every partition of req with code.
func produceErrors(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := kmsg.ProduceResponseTopic{Topic: t.Topic, TopicID: t.TopicID}
		for j := range t.Partitions {
			rt.Partitions = append(rt.Partitions, produceErrorPartition(t.Partitions[j].Partition, code))
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// fixProduce rewrites the broker ids and addresses of a produce response
// (KIP-951 current leaders and node endpoints) to the ambassador's, and
// reports whether a partition error calls for a metadata refresh.
func (f *Frontend) fixProduce(pr *kmsg.ProduceResponse) (stale bool) {
	for i := range pr.Topics {
		t := &pr.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.CurrentLeader.LeaderID >= 0 {
				p.CurrentLeader.LeaderID = AmbassadorNodeID
			}
			if p.ErrorCode != 0 {
				f.m.partitionError(0, p.ErrorCode)
				stale = stale || staleCode(p.ErrorCode)
			}
		}
	}
	if len(pr.Brokers) > 0 {
		st := f.settings()
		pr.Brokers = []kmsg.ProduceResponseBroker{{NodeID: AmbassadorNodeID, Host: st.host, Port: st.port}}
	}
	return stale
}
