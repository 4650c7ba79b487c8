package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handledMax is the newest version of each API key the ambassador
// handles (README.md says how each is routed). A key absent here is not
// advertised; a client that sends it anyway gets an error response.
// Versions are kmsg's newest unless a note says why not.
var handledMax = map[int16]int16{
	0:  13, // Produce
	1:  18, // Fetch
	2:  11, // ListOffsets
	3:  13, // Metadata
	8:  10, // OffsetCommit
	9:  10, // OffsetFetch
	10: 6,  // FindCoordinator
	11: 9,  // JoinGroup
	12: 4,  // Heartbeat
	13: 5,  // LeaveGroup
	14: 5,  // SyncGroup
	15: 6,  // DescribeGroups
	16: 5,  // ListGroups
	18: 5,  // ApiVersions
	19: 7,  // CreateTopics
	20: 6,  // DeleteTopics
	21: 2,  // DeleteRecords
	22: 5,  // InitProducerID
	23: 4,  // OffsetForLeaderEpoch
	24: 3,  // AddPartitionsToTxn: v4+ is broker-to-broker only
	25: 4,  // AddOffsetsToTxn
	26: 5,  // EndTxn
	28: 6,  // TxnOffsetCommit
	29: 3,  // DescribeACLs
	30: 3,  // CreateACLs
	31: 3,  // DeleteACLs
	32: 4,  // DescribeConfigs
	33: 2,  // AlterConfigs
	37: 3,  // CreatePartitions
	42: 3,  // DeleteGroups
	43: 2,  // ElectLeaders
	44: 1,  // IncrementalAlterConfigs
	47: 0,  // OffsetDelete
	48: 1,  // DescribeClientQuotas
	49: 1,  // AlterClientQuotas
	50: 0,  // DescribeUserSCRAMCredentials
	51: 0,  // AlterUserSCRAMCredentials
	57: 2,  // UpdateFeatures
	60: 2,  // DescribeCluster
	61: 0,  // DescribeProducers
	65: 0,  // DescribeTransactions
	66: 2,  // ListTransactions
	68: 1,  // ConsumerGroupHeartbeat
	69: 1,  // ConsumerGroupDescribe
	74: 1,  // ListConfigResources
	75: 0,  // DescribeTopicPartitions
}

// versionTable is the intersection of what every backend broker supports.
type versionTable struct {
	min, max [maxKey]int16 // max -1: some broker lacks the key
	features *kmsg.ApiVersionsResponse
}

// intersect returns the version ranges every broker supports.
func intersect(per []*kmsg.ApiVersionsResponse) *versionTable {
	t := &versionTable{features: per[0]}
	var n [maxKey]int
	var lo, hi [maxKey]int16
	for _, r := range per {
		for _, k := range r.ApiKeys {
			if k.ApiKey < 0 || int(k.ApiKey) >= maxKey {
				continue
			}
			if n[k.ApiKey] == 0 {
				lo[k.ApiKey], hi[k.ApiKey] = k.MinVersion, k.MaxVersion
			} else {
				lo[k.ApiKey] = max(lo[k.ApiKey], k.MinVersion)
				hi[k.ApiKey] = min(hi[k.ApiKey], k.MaxVersion)
			}
			n[k.ApiKey]++
		}
	}
	for k := range t.max {
		t.max[k] = -1
		if n[k] == len(per) && lo[k] <= hi[k] {
			t.min[k], t.max[k] = lo[k], hi[k]
		}
	}
	return t
}

// advertised returns the version range of key that the ambassador offers:
// what it handles and, once known, what every backend broker supports.
func (f *Frontend) advertised(key int16) (lo, hi int16, ok bool) {
	return advertisedIn(f.be.versions.Load(), key)
}

// advertisedIn is advertised with the brokers' table t (nil: not known).
func advertisedIn(t *versionTable, key int16) (lo, hi int16, ok bool) {
	hi, ok = handledMax[key]
	if !ok {
		return 0, 0, false
	}
	if key == 18 { // answered here
		return 0, hi, true
	}
	if t != nil {
		if int(key) >= maxKey || t.max[key] < 0 {
			return 0, 0, false
		}
		lo = t.min[key]
		hi = min(hi, t.max[key])
		if lo > hi {
			return 0, 0, false
		}
	}
	return lo, hi, true
}

// handleApiVersions answers from the ambassador's own table. A version
// above ours gets a v0 response with UNSUPPORTED_VERSION and our range of
// ApiVersions, as brokers answer (KIP-511).
func (c *clientConn) handleApiVersions(r *request) {
	req := r.req.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	_, ourHi, _ := c.f.advertised(18)
	if r.h.Version > ourHi {
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = 18, 0, ourHi
		resp.ApiKeys = append(resp.ApiKeys, k)
		r.respondAt(resp, 0)
		return
	}
	if r.h.Version >= 5 {
		hasCluster, hasNode := req.ClusterID != nil, req.NodeID != -1
		s := c.f.be.current()
		switch {
		case hasCluster != hasNode:
			resp.ErrorCode = kerr.InvalidRequest.Code
			r.respond(resp)
			return
		case hasCluster && (req.NodeID != AmbassadorNodeID || s.clusterID == nil || *req.ClusterID != *s.clusterID):
			resp.ErrorCode = kerr.RebootstrapRequired.Code
			r.respond(resp)
			return
		}
	}
	keys := make([]int16, 0, len(handledMax))
	for k := range handledMax {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t := c.f.be.versions.Load() // one table for the whole answer
	c.told.Store(&toldVersions{t: t})
	for _, k := range keys {
		lo, hi, ok := advertisedIn(t, k)
		if !ok {
			continue
		}
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, lo, hi
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	if t != nil && t.features != nil {
		resp.SupportedFeatures = t.features.SupportedFeatures
		resp.FinalizedFeatures = t.features.FinalizedFeatures
		resp.FinalizedFeaturesEpoch = t.features.FinalizedFeaturesEpoch
	}
	r.respond(resp)
}

// toldVersions is the brokers' table a client's ApiVersions answer was
// built from (t nil: none was known yet, the ambassador's own ranges).
type toldVersions struct{ t *versionTable }

// toldOK reports whether the client was offered version v of key: then a
// v the brokers no longer support means the table narrowed since (the
// first table came after the client asked, or the brokers were replaced
// by older ones), and the client must ask again.
func (c *clientConn) toldOK(key, v int16) bool {
	told := c.told.Load()
	if told == nil {
		return false
	}
	lo, hi, ok := advertisedIn(told.t, key)
	return ok && v >= lo && v <= hi
}
