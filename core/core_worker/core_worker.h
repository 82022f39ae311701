// CoreWorker: the runtime inside every rayts process (driver and workers),
// as a composition of components that each keep their own state.
//
// Role: owns this process's objects, submits tasks through worker leases
// with direct push to the leased worker, receives tasks pushed to this
// process and hands them to the host language, and talks to the node
// server. The work is done by its components (one header each):
//   ObjectManager       objects, puts, gets, local refs, fetches from owners
//   BorrowerProtocol    registrations with owners and for callers; links to them
//   TaskManager         submitted tasks: records, dependencies, results,
//                       retries, cancellation, lineage reconstruction
//   NormalTaskSubmitter leases per scheduling key, push, reply, lease return
//   ActorTaskSubmitter  actors: creation, ordered calls, restarts, death
//   TaskReceiver        tasks pushed here, actor call order, replies
//   PlasmaClient        the plasma channel and the mapped store
// and reaches the outside through a Transport (LoopTransport: unix sockets
// driven by an EventLoop, frames batched per connection; tests give a fake).
// This class wires them, routes incoming frames to them, and runs the
// lifecycle (Start connects, Shutdown closes). When the GCS marks a node
// dead (NodeDied, passed on by this process's node server) it has each
// component deal with what depended on that node: leases and requests
// there, objects whose primary copy was there, owners that lived there
// (docs/reliability.md, "When a node dies").
// Threads: the event loop's thread reads every socket and runs the
// handlers: under Node that is the JS thread itself (the bindings pass the
// libuv loop to Start); without one, Start runs an asio loop on a thread of
// its own. The host calls the components' public methods. Every handler and
// every host call takes the core lock (worker_context.h) for the
// components' state; outgoing frames queue per connection, written at the
// end of each loop turn, and by the host at the end of its turn
// (FlushOutbox). Results go back to the host as Events
// (context().DrainEvents()); `notify` fires when the event queue goes from
// empty to non-empty.
// Invariants: a lease is returned exactly once; every task's return objects
// become ready exactly once per execution; no frame that releases a
// reference (task reply, RemoveBorrower) leaves while a borrower
// registration of this process is unacknowledged.
#pragma once

#include <memory>
#include <string>

#include "core/common/status.h"
#include "core/core_worker/actor_task_submitter.h"
#include "core/core_worker/borrower_protocol.h"
#include "core/core_worker/node_links.h"
#include "core/core_worker/normal_task_submitter.h"
#include "core/core_worker/object_manager.h"
#include "core/core_worker/plasma_client.h"
#include "core/core_worker/reference_counter.h"
#include "core/core_worker/task_manager.h"
#include "core/core_worker/task_receiver.h"
#include "core/core_worker/task_types.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

class AsioLoop;
class EventLoop;
class LoopTransport;

// The memory summary of one process's runtime (the `rayts memory` view).
std::string MemorySummaryJsonLocked(const WorkerContext& ctx, const ReferenceCounter& refs, const ObjectManager& objects,
                                    const TaskManager& tasks) REQUIRES(core_lock);

class CoreWorker {
 public:
  // Connects to the node server at opts.node_socket and listens on
  // opts.listen_path, on `loop` (the caller's loop thread calls Start and
  // Shutdown), or on an asio loop thread of its own when `loop` is null.
  static StatusOr<std::unique_ptr<CoreWorker>> Start(CoreWorkerOptions opts, EventLoop* loop = nullptr);
  // The components over `transport` and no node (tests: a fake transport;
  // plasma calls fail).
  static std::unique_ptr<CoreWorker> WithTransport(CoreWorkerOptions opts, Transport& transport);
  ~CoreWorker();
  void Shutdown();

  WorkerContext& context() { return ctx_; }
  PlasmaClient& plasma() { return plasma_; }
  ObjectManager& objects() { return objects_; }
  BorrowerProtocol& borrowers() { return borrowers_; }
  TaskManager& tasks() { return tasks_; }
  NormalTaskSubmitter& submitter() { return normal_; }
  ActorTaskSubmitter& actors() { return actors_; }
  TaskReceiver& receiver() { return receiver_; }
  // The real transport (Start); null with WithTransport.
  LoopTransport* loop_transport() { return sockets_.get(); }

  // Writes the frames queued by host-thread calls (once per host turn);
  // TakeHostFlushRequest() says whether one is owed since the last flush.
  void FlushOutbox();
  bool TakeHostFlushRequest();
  // A cluster query (gcs::ClusterQuery) sent on the control connection;
  // answered by a kGcsReply event with this request id and the reply's JSON
  // (or its error). InvalidArgument for an unknown query number.
  StatusOr<uint64_t> Query(int query);
  // JSON summary of every object this process knows (see ts/runtime).
  std::string MemorySummaryJson();

  struct Stats {
    size_t owned_refs, memory_store_objects, queued_tasks, inflight_tasks, leases;
    size_t inbound_links;  // connections accepted here and still open (TaskReceiver)
    uint64_t bad_decrements;
  };
  Stats GetStats();

  // Incoming frames (the transport calls these with the core lock held).
  void OnInboundLocked(const std::shared_ptr<Link>& from, const proto::Envelope& env) REQUIRES(core_lock);
  void OnControlLocked(const proto::Envelope& env) REQUIRES(core_lock);

 private:
  CoreWorker(CoreWorkerOptions opts, Transport* transport, EventLoop* loop);
  // The GCS marked a node dead (NodeDied, from this process's node server).
  void OnNodeDiedLocked(const proto::NodeDied& d) REQUIRES(core_lock);
  Status Connect();

  WorkerContext ctx_;
  std::unique_ptr<AsioLoop> own_loop_;        // Start without a loop: the loop thread
  std::unique_ptr<LoopTransport> sockets_;  // the real transport (Start); null with WithTransport
  Transport& transport_;
  PlasmaClient plasma_;  // thread-safe (its channel's lock); the store mapping, set once by Connect
  ReferenceCounter refs_ GUARDED_BY(core_lock);
  BorrowerProtocol borrowers_;
  ObjectManager objects_;
  TaskManager tasks_;
  NodeLinks nodes_;  // connections to other nodes' servers (spillback)
  NormalTaskSubmitter normal_;
  ActorTaskSubmitter actors_;
  TaskReceiver receiver_;
};

}  // namespace rayts
