// GcsService: the GCS as a service: its tables (GcsTables) and the dispatch
// of every GCS request (core/protocol/gcs.fbs) to them.
//
// Role: the node server hosts one in embedded mode; a head daemon hosts the
// same class behind its own listener. A host hands each verified GcsRequest
// to HandleRequest together with the peer that sent it and who that peer
// is; the GcsReply goes back through GcsPeer::SendGcsReply, at once or, for
// WaitActor, when the actor becomes ALIVE or DEAD. What the GCS cannot do
// itself (end the worker process of a killed actor) it asks of its host
// through HostHooks.
// Ownership: owns the tables. Holds peers weakly: a deferred answer to a
// peer that is gone is dropped, and its subscription with it.
// Thread safety: none; the host calls every method on one thread (its io
// thread), and peers are called back on that thread.
// Invariants: every request is answered exactly once while its peer lives
// (request_id 0 included: nobody waits for that answer, but the blocking
// channel of a synchronous caller reads it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/gcs/gcs_tables.h"
#include "protocol/messages_generated.h"

namespace rayts::gcs {

// Where a GCS reply goes: the connection of the process that asked.
class GcsPeer {
 public:
  virtual ~GcsPeer() = default;
  // A whole size-prefixed Envelope frame holding a GcsReply.
  virtual void SendGcsReply(flatbuffers::DetachedBuffer frame) = 0;
};

// Who sent a request (set by the host from the connection's registration).
struct GcsCaller {
  WorkerID worker_id;  // the owner of actors it registers
  JobID job_id = 0;    // the job of actors it registers
  NodeID node_id;      // the node it sent the request through (nil: embedded, a tool)
};

class GcsService {
 public:
  struct HostHooks {
    // KillActor: end the worker process serving an actor at `address` (a
    // worker socket path) and give back its lease. May be empty (tests).
    std::function<void(const std::string& address)> kill_worker_at;
  };

  explicit GcsService(HostHooks hooks = {});
  GcsService(const GcsService&) = delete;
  GcsService& operator=(const GcsService&) = delete;

  // Dispatches one request (already verified as part of its frame). An
  // unknown or malformed body is answered InvalidArgument naming it.
  void HandleRequest(const std::shared_ptr<GcsPeer>& peer, const GcsCaller& caller,
                     const proto::GcsRequest& request);

  // A process's connection to its node closed: actors it owns end (unless
  // detached).
  void OnOwnerDisconnected(const WorkerID& owner) { tables_.actors().OnOwnerDied(owner); }

  // Node `node` was marked dead: the actors its processes owned end (their
  // workers elsewhere too, through kill_worker_at), and so do actors on it
  // that no owner will restart (ActorTable::OnNodeDead). Actors on it whose
  // owner lives are restarted (or reported dead) by that owner. Returns the
  // detached actors whose creator is gone that are now RESTARTING: the host
  // creates them again (GcsServer: RestartActor to a node).
  std::vector<ActorID> OnNodeDead(const NodeID& node, const std::string& why);

  // Host-side writes that have no wire request yet (the node and the job of
  // an embedded host register in-process).
  GcsTables& tables() { return tables_; }
  const GcsTables& tables() const { return tables_; }

 private:
  void HandleActorRequest(const std::shared_ptr<GcsPeer>& peer, const GcsCaller& caller,
                          const proto::GcsRequest& request);
  void WaitActor(const std::shared_ptr<GcsPeer>& peer, uint64_t request_id, const ActorID& id);

  HostHooks hooks_;
  GcsTables tables_;
};

// Builds a GcsReply frame: `status` and, when it is OK, the body that
// `body` adds to the builder (nullptr or an empty function: GcsEmptyReply).
using GcsReplyBodyFn =
    std::function<std::pair<proto::GcsReplyBody, flatbuffers::Offset<void>>(flatbuffers::FlatBufferBuilder&)>;
flatbuffers::DetachedBuffer BuildGcsReply(uint64_t request_id, const Status& status, const GcsReplyBodyFn& body);

}  // namespace rayts::gcs
