#include "core/core_worker/memory_query.h"

#include <vector>

#include "core/common/json.h"
#include "core/gcs/gcs_client.h"
#include "core/protocol/blocking_channel.h"
#include "core/protocol/connection.h"
#include "core/protocol/peer_address.h"
#include "core/protocol/peer_auth.h"

namespace rayts {

namespace {
flatbuffers::DetachedBuffer MemorySummaryFrame() {
  flatbuffers::FlatBufferBuilder fbb(64);
  return FinishFrame(fbb, proto::CreateMemorySummaryRequest(fbb, 1));
}

StatusOr<std::string> SummaryOn(BlockingChannel& ch) {
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(ch.Call(MemorySummaryFrame(), proto::Body::MemorySummaryReply, &storage, &env));
  auto* json = env->body_as_MemorySummaryReply()->json();
  return json ? json->str() : std::string();
}

// A TCP channel to `address` (host:port) that has sent AuthHello: the
// accepting side checks the token before it reads what follows (a refused
// token closes the connection, which the next Call reports).
Status OpenTcp(BlockingChannel* ch, const std::string& address, const std::string& token, int timeout_ms) {
  std::string host;
  int port = 0;
  RAYTS_RETURN_IF_ERROR(ParseHostPort(address, &host, &port));
  RAYTS_RETURN_IF_ERROR(ch->ConnectTcp(host, port, timeout_ms));
  return ch->Send(AuthHelloFrame(token, proto::PeerRole::Tool));
}

// The listen addresses of the node's CoreWorkers.
StatusOr<std::vector<std::string>> ListProcesses(BlockingChannel& ch) {
  flatbuffers::FlatBufferBuilder fbb(64);
  auto frame = FinishFrame(fbb, proto::CreateNodeProcessesRequest(fbb, 1));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(ch.Call(frame, proto::Body::NodeProcessesReply, &storage, &env));
  std::vector<std::string> out;
  if (auto* v = env->body_as_NodeProcessesReply()->processes()) {
    for (auto* p : *v) out.push_back(p->address() ? p->address()->str() : std::string());
  }
  return out;
}
}  // namespace

StatusOr<std::string> QueryMemorySummary(const std::string& socket_path) {
  BlockingChannel ch;
  RAYTS_RETURN_IF_ERROR(ch.Connect(socket_path));
  return SummaryOn(ch);
}

StatusOr<std::string> QueryStoreObjects(const std::string& node_socket) {
  BlockingChannel ch;
  RAYTS_RETURN_IF_ERROR(ch.Connect(node_socket));
  return gcs::GcsClient(&ch).StoreObjectsJson();
}

StatusOr<std::string> QueryNodeMemoryOverTcp(const std::string& node_address, const std::string& token, int timeout_ms) {
  BlockingChannel node;
  Status s = OpenTcp(&node, node_address, token, timeout_ms);
  std::string store;
  if (s.ok()) {
    auto st = gcs::GcsClient(&node).StoreObjectsJson();
    if (st.ok()) store = *st;
    s = st.status();
  }
  StatusOr<std::vector<std::string>> procs = s.ok() ? ListProcesses(node) : StatusOr<std::vector<std::string>>(s);
  if (!procs.ok()) {
    return Status(procs.status().code(), "the node server at " + node_address + " did not answer (" +
                                             procs.status().message() + "; a refused token closes the connection too)");
  }
  std::string out = "{\"store\":" + (store.empty() ? std::string("null") : store) + ",\"processes\":[";
  std::string unreachable;
  bool first = true;
  for (const std::string& address : *procs) {
    PeerAddress a = ParsePeerAddress(address);
    BlockingChannel ch;
    Status c = a.has_tcp() ? OpenTcp(&ch, TcpAddress(a.host, a.port), token, timeout_ms)
                           : Status::InvalidArgument("it listens on no TCP port");
    StatusOr<std::string> json = c.ok() ? SummaryOn(ch) : StatusOr<std::string>(c);
    if (json.ok()) {
      out += (first ? "" : ",") + *json;
      first = false;
      continue;
    }
    unreachable += unreachable.empty() ? "{\"address\":" : ",{\"address\":";
    JsonEscapeTo(&unreachable, address);
    unreachable += ",\"error\":";
    JsonEscapeTo(&unreachable, json.status().message());
    unreachable += "}";
  }
  return out + "],\"unreachable\":[" + unreachable + "]}";
}

}  // namespace rayts
