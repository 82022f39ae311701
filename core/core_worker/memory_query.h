// Blocking queries another process (or the node server) answers about
// memory, for the `rayts memory` CLI: no CoreWorker of this process is
// needed (the bindings' queryMemorySummary / queryStoreObjects).
//
// Role: one short-lived BlockingChannel per call to the peer's socket, one
// request, one reply.
// Ownership: nothing outlives a call.
// Thread safety: free functions; any thread. Each blocks its caller for at
// most the channel's 30 s reply bound.
#pragma once

#include <string>

#include "core/common/status.h"

namespace rayts {

// The MemorySummaryJson of the CoreWorker listening on `socket_path`.
StatusOr<std::string> QueryMemorySummary(const std::string& socket_path);
// The node's object store listing (the `store_objects` query), read over the
// node server's socket.
StatusOr<std::string> QueryStoreObjects(const std::string& node_socket);

}  // namespace rayts
