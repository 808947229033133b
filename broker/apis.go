package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one served Kafka API: the versions served and its handler. A
// handler returns the response to write, or nil when it wrote its own
// (Fetch) or there is none (Produce with acks=0).
type api struct {
	min, max int16
	handle   func(c *conn, r *request) (kmsg.Response, error)
}

// servedAPIs is the dispatch table. ApiVersions advertises exactly these
// keys and ranges. Minimums are the lowest versions real clients send
// (Debian's kafka-python 2.0.2 guesses old versions instead of reading ours);
// maximums stop before versions that address topics by ID in requests we do
// not resolve by ID (Produce v13, Fetch v13, OffsetCommit/OffsetFetch v10)
// and before KIP-890's transaction versions (InitProducerId v5,
// AddPartitionsToTxn v4, EndTxn v4, TxnOffsetCommit v4).
func (b *Broker) servedAPIs() map[int16]api {
	return map[int16]api{
		kmsg.Produce.Int16():                 {3, 12, b.handleProduce},
		kmsg.Fetch.Int16():                   {4, 12, b.handleFetch},
		kmsg.ListOffsets.Int16():             {0, 6, b.handleListOffsets},
		kmsg.Metadata.Int16():                {0, 12, b.handleMetadata},
		kmsg.OffsetCommit.Int16():            {2, 9, b.handleOffsetCommit},
		kmsg.OffsetFetch.Int16():             {1, 9, b.handleOffsetFetch},
		kmsg.FindCoordinator.Int16():         {0, 4, b.handleFindCoordinator},
		kmsg.JoinGroup.Int16():               {0, 9, b.handleJoinGroup},
		kmsg.Heartbeat.Int16():               {0, 4, b.handleHeartbeat},
		kmsg.LeaveGroup.Int16():              {0, 5, b.handleLeaveGroup},
		kmsg.SyncGroup.Int16():               {0, 5, b.handleSyncGroup},
		kmsg.DescribeGroups.Int16():          {0, 5, b.handleDescribeGroups},
		kmsg.ListGroups.Int16():              {0, 5, b.handleListGroups},
		kmsg.ApiVersions.Int16():             {0, 4, b.handleApiVersions},
		kmsg.CreateTopics.Int16():            {0, 7, b.handleCreateTopics},
		kmsg.DeleteTopics.Int16():            {0, 6, b.handleDeleteTopics},
		kmsg.InitProducerID.Int16():          {0, 4, b.handleInitProducerID},
		kmsg.OffsetForLeaderEpoch.Int16():    {0, 4, b.handleOffsetForLeaderEpoch},
		kmsg.DescribeConfigs.Int16():         {0, 4, b.handleDescribeConfigs},
		kmsg.AlterConfigs.Int16():            {0, 2, b.handleAlterConfigs},
		kmsg.CreatePartitions.Int16():        {0, 3, b.handleCreatePartitions},
		kmsg.DeleteGroups.Int16():            {0, 2, b.handleDeleteGroups},
		kmsg.IncrementalAlterConfigs.Int16(): {0, 1, b.handleIncrementalAlterConfigs},
		kmsg.AddPartitionsToTxn.Int16():      {0, 3, b.handleAddPartitionsToTxn},
		kmsg.AddOffsetsToTxn.Int16():         {0, 3, b.handleAddOffsetsToTxn},
		kmsg.EndTxn.Int16():                  {0, 3, b.handleEndTxn},
		kmsg.TxnOffsetCommit.Int16():         {0, 3, b.handleTxnOffsetCommit},
		kmsg.DescribeTransactions.Int16():    {0, 0, b.handleDescribeTransactions},
		kmsg.ListTransactions.Int16():        {0, 1, b.handleListTransactions},
	}
}

// ApiVersions: v0–v4. v3+ requests carry the client's software name and
// version, which we accept and ignore. A request of a higher version is
// answered by conn with a v0 UNSUPPORTED_VERSION response (KIP-511).
func (b *Broker) handleApiVersions(c *conn, r *request) (kmsg.Response, error) {
	return b.apiVersionsResponse(r.version), nil
}

func (b *Broker) apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	keys := make([]int16, 0, len(b.apis))
	for k := range b.apis {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		a := b.apis[k]
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}
