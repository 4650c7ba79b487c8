package kafka

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config resource types that name a broker.
const (
	resourceBroker       = kmsg.ConfigResourceTypeBroker
	resourceBrokerLogger = kmsg.ConfigResourceTypeBrokerLogger
)

// toController forwards an admin request to the controller (any broker
// forwards to the KRaft controller); topic changes refresh the
// ambassador's metadata.
func (c *clientConn) toController(r *request) {
	refresh := false
	switch r.h.Key {
	case 19, 20, 37, 43: // CreateTopics, DeleteTopics, CreatePartitions, ElectLeaders
		refresh = true
	}
	c.forward(r, c.f.be.controller(), kerr.NotController.Code, func(kmsg.Response) {
		if refresh {
			c.f.be.triggerRefresh()
		}
	})
}

// toAnyBroker forwards a request any broker can answer, chosen by the
// cluster's balancing policy among healthy brokers.
func (c *clientConn) toAnyBroker(r *request, fix func(kmsg.Response)) {
	c.forward(r, c.f.be.anyBroker(), kerr.NetworkException.Code, fix)
}

// handleCreateTopics refuses explicit replica assignments: they name
// backend broker ids, which clients of the ambassador cannot know.
func (c *clientConn) handleCreateTopics(r *request) {
	req := r.req.(*kmsg.CreateTopicsRequest)
	for _, t := range req.Topics {
		if len(t.ReplicaAssignment) > 0 {
			c.refuse(r, kerr.InvalidReplicaAssignment.Code, "replica assignments name backend brokers, which the ambassador hides")
			return
		}
	}
	c.toController(r)
}

func (c *clientConn) handleCreatePartitions(r *request) {
	req := r.req.(*kmsg.CreatePartitionsRequest)
	for _, t := range req.Topics {
		if len(t.Assignment) > 0 {
			c.refuse(r, kerr.InvalidReplicaAssignment.Code, "replica assignments name backend brokers, which the ambassador hides")
			return
		}
	}
	c.toController(r)
}

// handleAlterConfigs refuses changes to one broker's configuration (there
// is one visible broker, the ambassador); topic, group and cluster-default
// broker configs (empty name) go to the controller.
func (c *clientConn) handleAlterConfigs(r *request) {
	perBroker := false
	switch req := r.req.(type) {
	case *kmsg.AlterConfigsRequest:
		for _, res := range req.Resources {
			perBroker = perBroker || (res.ResourceType == resourceBroker || res.ResourceType == resourceBrokerLogger) && res.ResourceName != ""
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		for _, res := range req.Resources {
			perBroker = perBroker || (res.ResourceType == resourceBroker || res.ResourceType == resourceBrokerLogger) && res.ResourceName != ""
		}
	}
	if perBroker {
		c.refuse(r, kerr.InvalidRequest.Code, "per-broker configs cannot be altered through the ambassador; alter the cluster default (empty broker name)")
		return
	}
	c.toController(r)
}

func (c *clientConn) refuse(r *request, code int16, why string) {
	c.log.Warn("refusing request", "api", apiName(r.h.Key), "reason", why)
	resp, ok := errorResponse(r.req, code)
	if !ok {
		r.respondError(code)
		return
	}
	msg := why
	setErrorMessages(resp, &msg)
	r.respond(resp)
}

// handleDescribeConfigs sends broker resources named for the ambassador
// to one real broker and renames them back; values that would name a
// backend broker (listeners, ids) are replaced by the ambassador's.
func (c *clientConn) handleDescribeConfigs(r *request) {
	req := r.req.(*kmsg.DescribeConfigsRequest)
	ours := strconv.Itoa(int(AmbassadorNodeID))
	for _, res := range req.Resources {
		// "" is the cluster-wide default; any other id than ours names a
		// backend broker, which a client of the ambassador cannot know
		// (a broker, too, refuses an id not its own).
		if (res.ResourceType == resourceBroker || res.ResourceType == resourceBrokerLogger) && res.ResourceName != ours && res.ResourceName != "" {
			c.refuse(r, kerr.InvalidRequest.Code, "broker "+res.ResourceName+" is not this broker ("+ours+")")
			return
		}
	}
	target := c.f.be.anyBroker()
	if target < 0 {
		c.f.m.errorf(r.h.Key, "routing")
		r.respondError(kerr.NetworkException.Code)
		return
	}
	// The backend is asked for a copy naming the target: the client's
	// request stays as sent, so an error answered from it names no
	// backend broker.
	fwd := *req
	fwd.Resources = slices.Clone(req.Resources)
	renamed := map[int]bool{} // request resources renamed to the target
	for i := range fwd.Resources {
		res := &fwd.Resources[i]
		if (res.ResourceType == resourceBroker || res.ResourceType == resourceBrokerLogger) && res.ResourceName == ours {
			res.ResourceName = strconv.Itoa(int(target))
			renamed[i] = true
		}
	}
	st := c.f.settings()
	self := net.JoinHostPort(st.host, strconv.Itoa(int(st.port)))
	c.send(target, laneMain, r.h.ClientID, &fwd, r.hold, func(resp kmsg.Response, err error) {
		if err != nil {
			c.f.m.errorf(r.h.Key, "backend")
			r.respondError(kerr.NetworkException.Code)
			return
		}
		dr := resp.(*kmsg.DescribeConfigsResponse)
		for i := range dr.Resources {
			res := &dr.Resources[i]
			if res.ResourceType == kmsg.ConfigResourceTypeTopic {
				for j := range res.Configs {
					cfg := &res.Configs[j]
					if throttledReplicas[cfg.Name] {
						cfg.Value = ownReplicas(cfg.Value, ours)
						for k := range cfg.ConfigSynonyms {
							cfg.ConfigSynonyms[k].Value = ownReplicas(cfg.ConfigSynonyms[k].Value, ours)
						}
					}
				}
				continue
			}
			if res.ResourceType != resourceBroker && res.ResourceType != resourceBrokerLogger {
				continue
			}
			if len(renamed) > 0 && res.ResourceName == strconv.Itoa(int(target)) {
				res.ResourceName = ours
			}
			for j := range res.Configs {
				cfg := &res.Configs[j]
				if v, hide := hiddenConfig(cfg.Name, self, ours); hide {
					cfg.Value = v
					for k := range cfg.ConfigSynonyms {
						cfg.ConfigSynonyms[k].Value = v
					}
				}
			}
		}
		r.respond(resp)
	})
}

// throttledReplicas are the topic configs whose values name brokers:
// "partition:brokerId" pairs, or "*".
var throttledReplicas = map[string]bool{
	"leader.replication.throttled.replicas":   true,
	"follower.replication.throttled.replicas": true,
}

// ownReplicas rewrites a throttled-replicas value so that every pair names
// the ambassador's broker (each partition once); "*" and "" stay.
func ownReplicas(v *string, ours string) *string {
	if v == nil || *v == "" || *v == "*" {
		return v
	}
	var out []string
	seen := map[string]bool{}
	for _, pair := range strings.Split(*v, ",") {
		p, _, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p+":"+ours)
	}
	r := strings.Join(out, ",")
	return &r
}

// fixListConfigResources shows the broker and broker-logger resources as
// the ambassador's one broker: the backend lists one per real broker,
// named by its id.
func fixListConfigResources(resp kmsg.Response) {
	lr := resp.(*kmsg.ListConfigResourcesResponse)
	ours := strconv.Itoa(int(AmbassadorNodeID))
	seen := map[int8]bool{}
	out := lr.ConfigResources[:0]
	for _, res := range lr.ConfigResources {
		if t := kmsg.ConfigResourceType(res.Type); t == resourceBroker || t == resourceBrokerLogger {
			if seen[res.Type] {
				continue
			}
			seen[res.Type] = true
			res.Name = ours
		}
		out = append(out, res)
	}
	lr.ConfigResources = out
}

// hiddenConfig returns the value shown for broker configs that would
// reveal a backend broker.
func hiddenConfig(name, self, ours string) (*string, bool) {
	var v string
	switch name {
	case "listeners", "advertised.listeners", "advertised.host.name", "host.name", "port", "advertised.port":
		v = "PLAINTEXT://" + self
	case "broker.id", "node.id":
		v = ours
	case "controller.quorum.voters", "controller.quorum.bootstrap.servers", "controller.listener.names", "inter.broker.listener.name", "listener.security.protocol.map":
		return nil, true
	default:
		return nil, false
	}
	return &v, true
}

// fixDescribeCluster shows one broker, the ambassador, as the whole
// cluster and its controller.
func (f *Frontend) fixDescribeCluster(resp kmsg.Response) {
	dr := resp.(*kmsg.DescribeClusterResponse)
	st := f.settings()
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = AmbassadorNodeID, st.host, st.port
	dr.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	dr.ControllerID = AmbassadorNodeID
}

// fixDescribeTopicPartitions makes the ambassador every partition's
// leader and only replica.
func fixDescribeTopicPartitions(resp kmsg.Response) {
	dr := resp.(*kmsg.DescribeTopicPartitionsResponse)
	self := []int32{AmbassadorNodeID}
	for i := range dr.Topics {
		for j := range dr.Topics[i].Partitions {
			p := &dr.Topics[i].Partitions[j]
			if p.LeaderID >= 0 {
				p.LeaderID = AmbassadorNodeID
			}
			p.Replicas, p.ISR = self, self
			p.EligibleLeaderReplicas, p.LastKnownELR, p.OfflineReplicas = nil, nil, nil
		}
	}
}
