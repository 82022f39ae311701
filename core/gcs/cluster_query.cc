#include "core/gcs/cluster_query.h"

#include <unistd.h>

#include "core/gcs/gcs_client.h"
#include "core/protocol/blocking_channel.h"
#include "core/protocol/connection.h"
#include "core/protocol/peer_auth.h"

namespace rayts::gcs {

StatusOr<std::vector<std::string>> QueryClusterOverTcp(const std::string& address, const std::string& token,
                                                       const std::vector<int>& queries, int timeout_ms) {
  std::string host;
  int port = 0;
  RAYTS_RETURN_IF_ERROR(ParseHostPort(address, &host, &port));
  BlockingChannel ch;
  RAYTS_RETURN_IF_ERROR(ch.ConnectTcp(host, port, timeout_ms));
  std::vector<uint64_t> storage;
  const proto::Envelope* env = nullptr;
  auto hello = AuthHelloFrame(token, proto::PeerRole::Tool);
  Status s = ch.Call(hello, proto::Body::AuthReply, &storage, &env);
  if (!s.ok()) {
    return Status::IOError("the cluster at " + address + " closed the connection before answering (" + s.message() +
                           "); is it a rayts GCS?");
  }
  auto* auth = env->body_as_AuthReply();
  if (auth->code() != 0) {
    return Status::Unauthenticated("the cluster at " + address + " refused this process's auth token (" +
                                   (auth->message() ? auth->message()->str() : std::string()) + ")");
  }
  std::vector<std::string> out;
  uint64_t rid = 1;
  for (int q : queries) {
    if (q == static_cast<int>(ClusterQuery::kNodeStats) || q == static_cast<int>(ClusterQuery::kStoreObjects)) {
      return Status::InvalidArgument(std::string(ClusterQueryName(static_cast<ClusterQuery>(q))) +
                                     " is a node-local query: ask a node, not the GCS");
    }
    auto frame = QueryFrame(rid++, q);
    if (!frame.ok()) return frame.status();
    RAYTS_RETURN_IF_ERROR(ch.Call(*frame, proto::Body::GcsReply, &storage, &env));
    auto json = QueryReplyJson(*env);
    if (!json.ok()) return json.status();
    out.push_back(std::move(json).value());
  }
  return out;
}

}  // namespace rayts::gcs
