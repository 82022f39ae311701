// ClusterQuery over TCP: a tool's or a driver's direct questions to the GCS
// of a cluster (`rayts status`, and ray.init({address}) finding the node of
// its machine), without a node in between.
//
// Role: one blocking exchange: connect, authenticate with the token, ask
// each query (gcs_client.h ClusterQuery; node-local ones are refused), then
// close. A refused token is Unauthenticated with the GCS's reason; an
// unreachable GCS is IOError/TimedOut naming the address.
// Thread safety: a pure function of its arguments; call it off the JS thread.
#pragma once

#include <string>
#include <vector>

#include "core/common/status.h"

namespace rayts::gcs {

// The JSON of each query's reply, in order (see QueryReplyJson).
StatusOr<std::vector<std::string>> QueryClusterOverTcp(const std::string& address, const std::string& token,
                                                       const std::vector<int>& queries, int timeout_ms);

}  // namespace rayts::gcs
