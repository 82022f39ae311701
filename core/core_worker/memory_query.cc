#include "core/core_worker/memory_query.h"

#include <vector>

#include "core/gcs/gcs_client.h"
#include "core/protocol/blocking_channel.h"
#include "core/protocol/connection.h"

namespace rayts {

StatusOr<std::string> QueryMemorySummary(const std::string& socket_path) {
  BlockingChannel ch;
  RAYTS_RETURN_IF_ERROR(ch.Connect(socket_path));
  flatbuffers::FlatBufferBuilder fbb(64);
  auto frame = FinishFrame(fbb, proto::CreateMemorySummaryRequest(fbb, 1));
  std::vector<uint64_t> storage;
  const proto::Envelope* env;
  RAYTS_RETURN_IF_ERROR(ch.Call(frame, proto::Body::MemorySummaryReply, &storage, &env));
  auto* json = env->body_as_MemorySummaryReply()->json();
  return json ? json->str() : std::string();
}

StatusOr<std::string> QueryStoreObjects(const std::string& node_socket) {
  BlockingChannel ch;
  RAYTS_RETURN_IF_ERROR(ch.Connect(node_socket));
  return gcs::GcsClient(&ch).StoreObjectsJson();
}

}  // namespace rayts
