package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// route sends a request to the handler of its API (see README.md for the
// routing of each).
func (c *clientConn) route(r *request) {
	if !c.f.settings().admin && adminRequest(r.h.Key) {
		c.log.Warn("admin or security request refused (kafka.admin_requests is off)", "api", apiName(r.h.Key))
		c.f.m.errorf(r.h.Key, "refused")
		r.respondError(kerr.ClusterAuthorizationFailed.Code)
		return
	}
	switch req := r.req.(type) {
	case *kmsg.ProduceRequest:
		c.handleProduce(r)
	case *kmsg.FetchRequest:
		c.handleFetch(r)
	case *kmsg.ListOffsetsRequest, *kmsg.OffsetForLeaderEpochRequest,
		*kmsg.DeleteRecordsRequest, *kmsg.DescribeProducersRequest:
		c.splitByLeader(r)
	case *kmsg.MetadataRequest:
		c.handleMetadata(r)
	case *kmsg.ApiVersionsRequest:
		c.handleApiVersions(r)
	case *kmsg.FindCoordinatorRequest:
		c.handleFindCoordinator(r)

	// Groups: to the group's coordinator.
	case *kmsg.OffsetCommitRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.OffsetFetchRequest:
		if r.h.Version >= 8 {
			c.splitByCoordinator(r, coordGroup, "Groups", "Groups", "Group")
		} else {
			c.toCoordinator(r, coordGroup, req.Group)
		}
	case *kmsg.JoinGroupRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.HeartbeatRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.LeaveGroupRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.SyncGroupRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.OffsetDeleteRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.ConsumerGroupHeartbeatRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.TxnOffsetCommitRequest:
		c.toCoordinator(r, coordGroup, req.Group)
	case *kmsg.DescribeGroupsRequest:
		c.splitByCoordinator(r, coordGroup, "Groups", "Groups", "Group")
	case *kmsg.DeleteGroupsRequest:
		c.splitByCoordinator(r, coordGroup, "Groups", "Groups", "Group")
	case *kmsg.ConsumerGroupDescribeRequest:
		c.splitByCoordinator(r, coordGroup, "Groups", "Groups", "Group")
	case *kmsg.ListGroupsRequest:
		c.fanOut(r)

	// Transactions: to the transactional id's coordinator.
	case *kmsg.InitProducerIDRequest:
		if req.TransactionalID != nil {
			c.toCoordinator(r, coordTxn, *req.TransactionalID)
		} else {
			c.toAnyBroker(r, nil)
		}
	case *kmsg.AddPartitionsToTxnRequest:
		c.toCoordinator(r, coordTxn, req.TransactionalID)
	case *kmsg.AddOffsetsToTxnRequest:
		c.toCoordinator(r, coordTxn, req.TransactionalID)
	case *kmsg.EndTxnRequest:
		c.toCoordinator(r, coordTxn, req.TransactionalID)
	case *kmsg.DescribeTransactionsRequest:
		c.splitByCoordinator(r, coordTxn, "TransactionalIDs", "TransactionStates", "TransactionalID")
	case *kmsg.ListTransactionsRequest:
		c.fanOut(r)

	// Admin.
	case *kmsg.CreateTopicsRequest:
		c.handleCreateTopics(r)
	case *kmsg.CreatePartitionsRequest:
		c.handleCreatePartitions(r)
	case *kmsg.DeleteTopicsRequest, *kmsg.ElectLeadersRequest, *kmsg.UpdateFeaturesRequest,
		*kmsg.CreateACLsRequest, *kmsg.DeleteACLsRequest, *kmsg.AlterClientQuotasRequest,
		*kmsg.AlterUserSCRAMCredentialsRequest:
		c.toController(r)
	case *kmsg.AlterConfigsRequest, *kmsg.IncrementalAlterConfigsRequest:
		c.handleAlterConfigs(r)
	case *kmsg.DescribeConfigsRequest:
		c.handleDescribeConfigs(r)
	case *kmsg.DescribeACLsRequest, *kmsg.DescribeClientQuotasRequest,
		*kmsg.DescribeUserSCRAMCredentialsRequest:
		c.toAnyBroker(r, nil)
	case *kmsg.ListConfigResourcesRequest:
		c.toAnyBroker(r, fixListConfigResources)
	case *kmsg.DescribeClusterRequest:
		c.toAnyBroker(r, c.f.fixDescribeCluster)
	case *kmsg.DescribeTopicPartitionsRequest:
		c.toAnyBroker(r, fixDescribeTopicPartitions)

	default:
		c.log.Warn("request for an API the ambassador does not handle; answering with an error", "api", apiName(r.h.Key), "version", r.h.Version)
		c.f.m.errorf(r.h.Key, "unsupported")
		r.respondError(kerr.UnsupportedVersion.Code)
	}
}

// adminRequest: the APIs that change the cluster or its security, or read
// its security, refused when kafka.admin_requests is off.
func adminRequest(key int16) bool {
	switch kmsg.Key(key) {
	case kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.CreatePartitions, kmsg.DeleteRecords,
		kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs, kmsg.ElectLeaders, kmsg.UpdateFeatures,
		kmsg.CreateACLs, kmsg.DeleteACLs, kmsg.DescribeACLs,
		kmsg.AlterUserSCRAMCredentials, kmsg.DescribeUserSCRAMCredentials,
		kmsg.AlterClientQuotas, kmsg.DescribeClientQuotas:
		return true
	}
	return false
}
