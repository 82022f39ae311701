// Blocking queries another process (or the node server) answers about
// memory, for the `rayts memory` CLI: no CoreWorker of this process is
// needed (the bindings' queryMemorySummary / queryStoreObjects /
// queryNodeMemory).
//
// Role: short-lived BlockingChannels, one request and one reply on each:
// over a unix socket (this machine's sessions), or over TCP with the
// cluster token (AuthHello first) to a node server of a cluster and to each
// CoreWorker it lists.
// Ownership: nothing outlives a call.
// Thread safety: free functions; any thread. A unix-socket query blocks its
// caller for at most the channel's 30 s reply bound; QueryNodeMemoryOverTcp
// for at most timeout_ms per connection it opens.
#pragma once

#include <string>

#include "core/common/status.h"

namespace rayts {

// The MemorySummaryJson of the CoreWorker listening on `socket_path`.
StatusOr<std::string> QueryMemorySummary(const std::string& socket_path);
// The node's object store listing (the `store_objects` query), read over the
// node server's socket.
StatusOr<std::string> QueryStoreObjects(const std::string& node_socket);
// Every process of the cluster node whose node server listens on TCP at
// `node_address` (ip:port, its nodeManagerAddress): asks the node for its
// store listing and its CoreWorkers (NodeProcessesRequest), then each
// CoreWorker over TCP for its summary. JSON:
//   {"store": <StoreObjects JSON>, "processes": [<MemorySummaryJson>, ...],
//    "unreachable": [{"address": "...", "error": "..."}, ...]}
// A node that does not answer (or refuses the token) is an error; a
// process that does not answer within timeout_ms is listed as unreachable.
StatusOr<std::string> QueryNodeMemoryOverTcp(const std::string& node_address, const std::string& token, int timeout_ms);

}  // namespace rayts
