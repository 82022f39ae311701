// GcsClient: the caller's side of the GCS protocol (core/protocol/gcs.fbs)
// and of the node-local queries (node stats, store listing).
//
// Role: builds request frames and reads replies, so no caller assembles a
// GCS message by hand. Synchronous calls (a JS call that needs the answer
// before it returns: register or look up an actor) are one blocking round
// trip on a BlockingChannel to the node server; asynchronous ones are frames
// the caller queues on its control connection (the *Frame builders), whose
// replies come back to it as envelopes (ReadWaitActorReply, QueryReplyJson).
// JSON appears only at the edge to JavaScript: QueryReplyJson renders a
// typed reply for ray.nodes() and friends.
// Ownership: a GcsClient borrows its channel, which must outlive it.
// Thread safety: the synchronous calls may be made from any thread (the
// channel serialises them); the builders and readers are pure functions.
#pragma once

#include <cstdint>
#include <string>

#include <flatbuffers/flatbuffers.h>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/gcs/actor_table.h"
#include "protocol/messages_generated.h"

namespace rayts {
class BlockingChannel;
}

namespace rayts::gcs {

// The read-only cluster queries JavaScript makes (ray.nodes(), ...). The
// numbering is exported to TypeScript by the addon; append only.
enum class ClusterQuery : int {
  kNodes = 0,
  kClusterResources = 1,
  kAvailableResources = 2,
  kJobs = 3,
  kNodeStats = 4,     // node-local: answered by the node server itself
  kStoreObjects = 5,  // node-local
};
inline constexpr int kNumClusterQueries = 6;
const char* ClusterQueryName(ClusterQuery q);  // "Nodes", "ClusterResources", ...

struct ActorRegistration {
  ActorID actor_id;
  std::string name;  // empty: anonymous
  std::string ns;
  std::string class_name;
  bool detached = false;
  bool get_if_exists = false;
  int max_restarts = 0;
  std::string info;  // the owner's opaque description (see gcs.fbs)
};

struct RegisteredActor {
  bool existing = false;  // a live actor already had the name (get_if_exists)
  ActorID actor_id;       // the actor now registered under the name
  std::string info;       // set when existing
};

struct NamedActor {
  ActorID actor_id;
  std::string info;
};

class GcsClient {
 public:
  explicit GcsClient(BlockingChannel* channel) : channel_(channel) {}

  // AlreadyExists when the name is taken and !get_if_exists.
  StatusOr<RegisteredActor> RegisterActor(const ActorRegistration& r);
  // NotFound when no live actor has that name in that namespace.
  StatusOr<NamedActor> GetNamedActor(const std::string& ns, const std::string& name);
  // Kills an actor this process does not own (its worker is ended).
  Status KillActor(const ActorID& id, const std::string& cause);
  // The owner records the actor's death now (no restart).
  Status ReportActorDead(const ActorID& id, const std::string& cause);
  // The node's store listing (a node-local query); NodeQuery for the CLI.
  StatusOr<std::string> StoreObjectsJson();

 private:
  // One request/reply; a non-OK reply code becomes the returned Status.
  Status Call(const flatbuffers::DetachedBuffer& frame, std::vector<uint64_t>* storage, const proto::GcsReply** out);
  BlockingChannel* channel_;
};

// ---- frames for the asynchronous path (request id 0: fire and forget) ----
flatbuffers::DetachedBuffer ActorAliveFrame(const ActorID& id, const std::string& address);
flatbuffers::DetachedBuffer ActorRestartingFrame(const ActorID& id, const std::string& cause);
flatbuffers::DetachedBuffer ActorDeadFrame(const ActorID& id, const std::string& cause);
flatbuffers::DetachedBuffer WaitActorFrame(uint64_t request_id, const ActorID& id);
// A detached actor's owner: what re-creating it without the owner needs
// (`spec`: an ActorRestartSpec buffer; empty with `not_restartable`).
flatbuffers::DetachedBuffer ActorRestartSpecFrame(const ActorID& id, const std::string& spec,
                                                  const std::string& not_restartable);
// InvalidArgument for a number that is not a ClusterQuery.
StatusOr<flatbuffers::DetachedBuffer> QueryFrame(uint64_t request_id, int query);

// A WaitActor answer: alive with the actor's address, or dead with why.
struct ActorLocation {
  bool alive = false;
  std::string address;
  std::string death_cause;
};
// The reply's Status when it is not OK; InvalidArgument for another body.
StatusOr<ActorLocation> ReadWaitActorReply(const proto::GcsReply& reply);

// JSON for JavaScript of a query's reply envelope (GcsReply, NodeStatsReply
// or StoreObjectsReply): ray.nodes() [{nodeId, alive, address, resources,
// startTimeMs}], resources {name: amount}, jobs [{jobId, driverPid, alive,
// namespace}], node stats {name: value}, store listing (see ts StoreStats).
// A GcsReply with an error code returns that Status.
StatusOr<std::string> QueryReplyJson(const proto::Envelope& reply);
// The request id of a query reply envelope (0 for any other envelope).
uint64_t QueryReplyId(const proto::Envelope& reply);

}  // namespace rayts::gcs
