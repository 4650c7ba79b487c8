package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleMetadata asks the backend for the topics the client wants (with
// its auto-creation flag), learns their leaders, and answers with a
// one-broker cluster: the ambassador is the only broker, the controller,
// and the leader, only replica and only ISR member of every partition.
// Topics, partitions, topic ids, leader epochs and errors are the
// backend's.
func (c *clientConn) handleMetadata(r *request) {
	req := r.req.(*kmsg.MetadataRequest)
	if r.h.Version == 0 && len(req.Topics) == 0 {
		req.Topics = nil // v0: an empty list means every topic
	}
	if r.h.Version < 4 {
		// Before v4 there is no flag: a broker auto-creates (when it is
		// configured to); the backend is asked at a newer version.
		req.AllowAutoTopicCreation = true
	}
	c.async(func() {
		resp, err := c.f.be.metadata(c.ctx, req)
		if err != nil {
			c.log.Warn("backend metadata failed", "error", err)
			c.f.m.errorf(3, "backend")
		}
		r.respond(c.f.synthMetadata(req, resp))
	})
}

// synthMetadata builds the client's metadata response from the backend's
// (nil: the backend could not be asked; requested topics then get
// LEADER_NOT_AVAILABLE, which clients retry).
func (f *Frontend) synthMetadata(req *kmsg.MetadataRequest, be *kmsg.MetadataResponse) *kmsg.MetadataResponse {
	st := f.settings()
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = AmbassadorNodeID, st.host, st.port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	resp.ControllerID = AmbassadorNodeID
	if be == nil {
		resp.ClusterID = f.be.current().clusterID
		for _, t := range req.Topics {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			rt.ErrorCode = kerr.LeaderNotAvailable.Code
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp.ClusterID = be.ClusterID
	resp.ThrottleMillis = be.ThrottleMillis
	resp.AuthorizedOperations = be.AuthorizedOperations
	resp.ErrorCode = be.ErrorCode
	resp.Topics = be.Topics
	self := []int32{AmbassadorNodeID}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.Leader >= 0 {
				p.Leader = AmbassadorNodeID
			}
			if p.ErrorCode == kerr.ReplicaNotAvailable.Code {
				p.ErrorCode = 0 // a follower is down; our one replica is not
			}
			p.Replicas = self
			p.ISR = self
			p.OfflineReplicas = nil
		}
	}
	return resp
}
