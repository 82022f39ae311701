// CoreWorker: the runtime inside every rayts process (driver and workers).
//
// Role: owns this process's objects (MemoryStore + ReferenceCounter), submits
// tasks through worker leases with direct push to the leased worker
// (TaskSubmitter), receives tasks pushed to this process and hands them to the
// host language, and talks to the node server: a blocking channel for plasma
// (create/get/release; the store memfd is mapped once at Start) and an async
// control connection for leases and GCS calls.
// Threads: one io thread reads every socket and handles what arrives. The
// host (JS) thread calls the public methods; they take `mu_`, update state
// and queue outgoing frames in an outbox that the host flushes at the end of
// its turn (FlushOutbox), writing straight from its own thread. Frames made
// on the io thread go to the same outbox (order kept) and are written when
// the handler of the current read batch returns. Results go back
// to the host as Events through DrainEvents(); `notify` fires when the event
// queue goes from empty to non-empty (the bindings turn that into one
// thread-safe-function call per batch).
// Implementation: core_worker.cc (lifecycle, objects, control plane),
// task_submission.cc (owner side: leases, push, replies, retries),
// task_execution.cc (tasks pushed to this process) and ownership.cc
// (borrower protocol, lineage reconstruction, memory summary).
// Invariants: a lease is returned exactly once; every task's return objects
// become ready exactly once per execution (value, error, or cancellation; a
// lineage re-run makes them pending and ready again); no frame that releases
// a reference (task reply, RemoveBorrower) leaves while a borrower
// registration of this process is unacknowledged.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <asio.hpp>

#include "core/gcs/gcs_client.h"
#include "core/common/id.h"
#include "core/common/status.h"
#include "core/core_worker/lineage_cache.h"
#include "core/core_worker/memory_store.h"
#include "core/core_worker/reference_counter.h"
#include "core/plasma/shm_region.h"
#include "core/protocol/blocking_channel.h"
#include "core/protocol/connection.h"

namespace rayts {

struct CoreWorkerOptions {
  std::string node_socket;   // the node server's unix socket
  std::string listen_path;   // this process's own socket (direct task push)
  bool is_driver = true;
  WorkerID worker_id = WorkerID::FromRandom();
  JobID job_id = 0;
  std::function<void()> notify;  // any thread; must not call back into CoreWorker
  uint64_t lineage_max_bytes = 64ull << 20;  // bound on kept task specs (lineageMaxBytes)
};

// A ref found inside a value being serialized (see CoreWorker::StageNested).
struct NestedRefIn {
  ObjectID id;
  std::string owner_address;  // empty: this process
  int slot = 0;               // return index for task results; 0 otherwise
};

struct FunctionRef {
  std::string hash, source, module_url, export_name;
};

struct TaskArgIn {           // from the host at submit time
  bool by_ref = false;
  ObjectID id;               // by_ref
  std::string owner_address; // by_ref: empty if this process owns it
  std::shared_ptr<const std::string> data;  // by value: serialized bytes
};

// What every task of one remote function (with one option set) shares:
// registered once, referenced by id on each submit (no per-call strings).
struct TaskClass {
  FunctionRef function;
  std::string name;
  std::vector<std::pair<std::string, double>> resources;
  uint64_t scheduling_key = 0;  // computed at registration
  // retryExceptions: "" none, "*" any thrown error, else error names
  // separated by '\n'. The executor decides; the owner retries.
  std::string retry_exceptions;
};

struct SubmitRequest {
  std::shared_ptr<const TaskClass> cls;
  // Actor tasks: the actor, the method (empty for the constructor call).
  TaskID actor_id;
  bool actor_creation = false;
  std::string method;
  int max_concurrency = 0;   // actor creation: 0 = the executor's default
  std::string concurrency_groups;  // actor creation: JSON, read by the executor
  bool release_cpu = false;  // actor creation: give the placement CPU back once constructed
  int max_pending = 0;       // actor calls: > 0 limits queued + running calls
  int max_restarts = 0;      // actor creation: -1 forever
  bool detached = false;     // actor creation: lifetime 'detached'
  int max_task_retries = 0;  // actor creation: retries of calls cut by a restart; -1 forever
  std::vector<TaskArgIn> args;
  int num_returns = 1;       // -1: streaming
  int max_retries = 3;
  TaskID parent;             // the task (executing here) that submitted it; nil from the driver's top level
};

struct ExecArg {             // to the host at execution time
  bool by_ref = false;       // value must be fetched (plasma or the owner)
  bool in_plasma = false;
  ObjectID id;
  std::string owner_address;
  std::shared_ptr<const std::string> data;
};

struct ExecTask {
  uint64_t handle = 0;
  TaskID task_id;
  TaskID actor_id;           // nil for normal tasks
  bool actor_creation = false;
  std::string method;
  int max_concurrency = 0;
  std::string concurrency_groups;
  bool release_cpu = false;
  FunctionRef function;
  std::string name;
  std::vector<ExecArg> args;
  int num_returns = 1;
  std::string retry_exceptions;  // as TaskClass::retry_exceptions
};

struct ReturnValue {         // from the host when a task finishes
  std::shared_ptr<const std::string> data;  // inline bytes or error JSON
  bool in_plasma = false;    // already created and sealed in plasma under its id
  bool is_error = false;
  uint64_t size = 0;
};

struct Event {
  enum class Type { kObjectReady, kExecuteTask, kGeneratorItem, kGeneratorEnd, kGcsReply, kCancelTask, kTriggerGc,
                    kRecoverObject };  // kRecoverObject: a borrower lost the plasma copy; call Reconstruct
  explicit Event(Type t) : type(t) {}
  Type type;
  ObjectID object_id;
  TaskID task_id;
  uint64_t id = 0;           // request id / task handle
  int64_t index = 0;
  int code = 0;
  std::string text;          // message or reply body
  std::shared_ptr<ExecTask> task;
  bool force = false;
};

struct LookupResult {
  bool known = false, ready = false, in_plasma = false, is_error = false;
  std::shared_ptr<const std::string> data;
  uint64_t size = 0;
};

struct PlasmaView { uint64_t offset = 0, size = 0; };

class CoreWorker {
 public:
  static StatusOr<std::unique_ptr<CoreWorker>> Start(CoreWorkerOptions opts);
  ~CoreWorker();
  void Shutdown();

  const WorkerID& worker_id() const { return opts_.worker_id; }
  const NodeID& node_id() const { return node_id_; }
  const std::string& address() const { return opts_.listen_path; }
  JobID job_id() const { return job_id_; }
  const std::string& session_dir() const { return session_dir_; }
  uint8_t* store_base() const { return store_ ? store_->data() : nullptr; }
  uint64_t store_size() const { return store_ ? store_->size() : 0; }

  // ---- objects ----
  ObjectID NextPutId();
  void PutInline(const ObjectID& id, std::shared_ptr<const std::string> data);
  // NextPutId + PutInline under one lock.
  ObjectID PutInlineNew(std::shared_ptr<const std::string> data);
  // Allocates `size` bytes in plasma for `id`; the host writes, then seals.
  // allow_spill = false: the store answers OutOfMemory rather than spill.
  StatusOr<uint64_t> PlasmaCreate(const ObjectID& id, uint64_t size, bool allow_spill = true);
  Status PlasmaSeal(const ObjectID& id, bool owned_put);
  StatusOr<PlasmaView> PlasmaGet(const ObjectID& id);
  void PlasmaRelease(const ObjectID& id);
  LookupResult TryGet(const ObjectID& id);
  // Emits kObjectReady for `id` once it is ready (at once if it already is).
  void Subscribe(const ObjectID& id, const std::string& owner_address);
  void AddLocalRef(const ObjectID& id, const std::string& owner_address);
  void AddLocalRefs(const std::vector<std::pair<ObjectID, std::string>>& refs);
  // out[i] = 1 if ids[i] is ready in this process (value, error or plasma).
  void ReadyMask(const std::vector<ObjectID>& ids, uint8_t* out);
  void RemoveLocalRefs(const std::vector<ObjectID>& ids);

  // ---- ownership (ownership.cc) ----
  // Refs found inside the value serialized next; consumed by the next
  // PutInline/PutInlineNew/PlasmaSeal(owned_put) (the put object holds them),
  // SubmitTask/CreateActor/SubmitActorTask (the task holds them until it
  // finishes) or TaskDone/ReportGeneratorItem (return `slot`: the caller
  // becomes their borrower before the reply goes out).
  void StageNested(std::vector<NestedRefIn> refs);
  // Owner: recovers `id` after its plasma copy was found missing: resubmits
  // the creating task (recovering lost arguments first). OK if it is being
  // recovered (wait for it) or was not lost; ObjectLost if not recomputable.
  Status Reconstruct(const ObjectID& id);
  // Borrower: the plasma copy of `id` is missing; ask its owner to recover it
  // (the local entry becomes pending; kObjectReady follows).
  void ReportLost(const ObjectID& id, const std::string& owner_address);
  // Test hook: make the node's store lose its copy of `id` now.
  Status LoseFromStore(const ObjectID& id);
  // JSON summary of every object this process knows (see ts/memory.ts).
  std::string MemorySummaryJson();
  // Asks the CoreWorker listening on `socket_path` (another process) for its
  // MemorySummaryJson; a blocking round trip (at most 30 s).
  static StatusOr<std::string> QueryMemorySummary(const std::string& socket_path);
  // The node's object store listing (the `store_objects` GCS call) read over
  // the node server's socket, for `rayts memory`. Blocking, at most 30 s.
  static StatusOr<std::string> QueryStoreObjects(const std::string& node_socket);

  // ---- tasks ----
  uint32_t RegisterTaskClass(TaskClass cls);
  std::shared_ptr<const TaskClass> GetTaskClass(uint32_t id);
  StatusOr<TaskID> SubmitTask(SubmitRequest req, std::vector<ObjectID>* return_ids);
  // Actors (owned by this process). CreateActor leases a worker for the
  // actor's whole life and pushes the constructor call; calls then go to that
  // worker in submission order. A dead actor fails calls with ActorDiedError.
  // `req.actor_id` may be preset (the caller registered it with the GCS).
  StatusOr<TaskID> CreateActor(SubmitRequest req, ObjectID* ready_id);
  StatusOr<TaskID> SubmitActorTask(SubmitRequest req, std::vector<ObjectID>* return_ids);
  // no_restart = false restarts the actor if its maxRestarts allows.
  // when_idle: end it once no call is queued or running (last handle gone).
  void KillActor(const TaskID& actor_id, const std::string& cause, bool no_restart = true, bool when_idle = false);
  // `token` is an object this process owns that every handle to the actor
  // holds, here and (as a borrowed ref) in other processes. When it is
  // released everywhere, no handle is left: the actor ends once idle
  // (Ray: an actor dies with its last handle). Not called for detached actors.
  void SetActorToken(const TaskID& actor_id, const ObjectID& token);
  // Cancels a task this process owns (task_termination.cc): a queued one
  // fails with TaskCancelledError at once; a running one is asked to stop
  // (force: its worker process exits). recursive: the executing worker also
  // cancels the tasks that one submitted. Finished or unknown: no-op.
  // InvalidArgument for force on an actor task.
  Status CancelTask(const TaskID& task, bool force, bool recursive);
  // retryable: the task threw an error its retryExceptions allows to retry.
  void TaskDone(uint64_t handle, std::vector<ReturnValue> returns, bool retryable = false);
  void ReportGeneratorItem(uint64_t handle, int64_t index, ReturnValue item);
  void SetBlocked(bool blocked);

  // ---- control plane ----
  // A cluster query (gcs::ClusterQuery) sent on the control connection;
  // answered by a kGcsReply event with this request id and the reply's JSON
  // (or its error). InvalidArgument for an unknown query number.
  StatusOr<uint64_t> Query(int query);
  // The process is exiting on its own with `code`: tell every process that
  // pushes tasks to it (best effort, one non-blocking write each).
  void ReportExit(int code);
  // Typed GCS calls answered synchronously: blocking round trips on the
  // plasma channel (a named actor's registration must be known before the
  // JS call returns).
  gcs::GcsClient& gcs() { return gcs_client_; }

  std::vector<Event> DrainEvents();

  // Frames queued by host-thread calls wait in an outbox until the host
  // flushes (once per JS turn: many submits, one sendmsg per connection,
  // written from the host thread). TakeHostFlushRequest() says whether a
  // flush is owed since the last one.
  void FlushOutbox();
  bool TakeHostFlushRequest();

  struct Stats {
    size_t owned_refs, memory_store_objects, queued_tasks, inflight_tasks, leases;
    uint64_t bad_decrements;
  };
  Stats GetStats();

 private:
  struct Pending;
  struct KeyState;
  struct Lease;

  // Holds mu_; on release, notifies the host if events were queued meanwhile.
  class Guard {
   public:
    explicit Guard(CoreWorker* cw) : cw_(cw), lock_(cw->mu_) {}
    ~Guard();
   private:
    CoreWorker* cw_;
    std::unique_lock<std::mutex> lock_;
  };

  explicit CoreWorker(CoreWorkerOptions opts);
  Status Connect();
  void Accept();
  void OnInbound(const std::shared_ptr<Connection>& c, const proto::Envelope& env);
  void OnControl(const proto::Envelope& env);
  void OnWorkerMessage(const std::shared_ptr<Lease>& lease, const proto::Envelope& env);
  void OnOwnerMessage(const std::string& address, const proto::Envelope& env);

  // All below: caller holds mu_.
  void EmitLocked(Event e);
  void QueueControlLocked(flatbuffers::DetachedBuffer frame);
  void QueueToLocked(const std::shared_ptr<Connection>& c, flatbuffers::DetachedBuffer frame);
  void SendOutboxLocked();
  void ObjectReadyLocked(const ObjectID& id);
  void StoreResultLocked(const ObjectID& id, const proto::ReturnObject* ret);
  void StoreErrorLocked(const ObjectID& id, const std::string& json);
  void FailTaskLocked(const std::shared_ptr<Pending>& t, const std::string& json);
  void ResolveDependenciesLocked(const std::shared_ptr<Pending>& t);
  void EnqueueReadyLocked(const std::shared_ptr<Pending>& t);
  void DispatchLocked(KeyState& ks);
  void PushLocked(const std::shared_ptr<Lease>& lease, const std::shared_ptr<Pending>& t);
  void RequestLeaseLocked(KeyState& ks);
  void OnLeaseReplyLocked(const proto::LeaseReply* r);
  void MaybeReturnLeaseLocked(const std::shared_ptr<Lease>& lease);
  void ReturnLeaseLocked(const std::shared_ptr<Lease>& lease, bool worker_exiting);
  void OnLeaseConnectionClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s);
  void OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply* r);
  void FinishTaskLocked(const std::shared_ptr<Pending>& t);
  void OnReleased(const ObjectID& id, const ReferenceCounter::Ref& ref);
  void ActorDiedLocked(KeyState& ks, const std::string& cause);
  void AskActorAddressLocked(KeyState& ks);
  void OnActorAddressLocked(KeyState& ks, const StatusOr<gcs::ActorLocation>& where);
  bool ConnectLeaseLocked(const std::shared_ptr<Lease>& lease);
  StatusOr<TaskID> SubmitLocked(SubmitRequest req, uint64_t key, std::vector<ObjectID>* return_ids);
  void PinOwnedArgLocked(const std::shared_ptr<Pending>& t, const ObjectID& id);
  std::shared_ptr<Pending> NewPendingLocked(SubmitRequest req, uint64_t key, std::vector<ObjectID>* return_ids);
  // Actors (actor_submission.cc).
  KeyState& NewActorKeyLocked(const TaskID& actor, bool borrowed);
  StatusOr<TaskID> SubmitActorTaskLocked(SubmitRequest req, std::vector<ObjectID>* return_ids);
  void KillActorLocked(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle);
  void ActorTokenReleasedLocked(const ObjectID& token);
  void DispatchActorLocked(KeyState& ks);
  void ActorConnectedLocked(KeyState& ks);
  void TakeActorFailuresLocked(KeyState& ks);
  void BorrowedActorLostLocked(KeyState& ks, const std::string& cause);
  void SubmitCreationLocked(KeyState& ks);
  bool ActorIdleLocked(const KeyState& ks) const;
  void MaybeEndIdleActorLocked(KeyState& ks);
  TaskID NextTaskIdLocked();
  void ActorWorkerLostLocked(KeyState& ks, std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> inflight,
                             const std::string& cause);
  std::string ActorDiedJson(const TaskID& actor, const std::string& cause);
  std::shared_ptr<Connection> OwnerConnectionLocked(const std::string& address);
  void SendReplyLocked(uint64_t handle, std::vector<ReturnValue> returns, int code, const std::string& msg,
                       bool retryable = false);
  // task_termination.cc: cancellation, retries, the memory monitor's kill.
  Status CancelTaskLocked(const TaskID& task, bool force, bool recursive);
  void NoteChildLocked(const TaskID& parent, const TaskID& child);
  bool RetryLocked(const std::shared_ptr<Pending>& t);
  void OnCancelRequestLocked(const proto::CancelTask* ct);
  void OnKillWorkerLocked(const std::string& reason);
  void OrderActorCallLocked(const std::shared_ptr<Connection>& c, const WorkerID& caller, uint64_t seq,
                            uint64_t epoch_start, std::shared_ptr<ExecTask> task);
  void ReleaseActorCallsLocked(const WorkerID& caller, std::vector<uint64_t> runnable);
  void DropCallerLocked(const std::shared_ptr<Connection>& c);
  // ownership.cc
  void OnPeerClosedLocked(const std::string& address, const std::shared_ptr<Connection>& c);
  bool IsSelf(const std::string& address) const { return address.empty() || address == opts_.listen_path; }
  void RegisterBorrowLocked(const ObjectID& id, const std::string& owner);
  void RegisterOnBehalfLocked(const ObjectID& id, const std::string& owner, const std::string& borrower);
  void WatchBorrowerLocked(const std::string& address);
  void OnBorrowerMessageLocked(const std::shared_ptr<Connection>& c, const proto::Envelope& env);
  void AckedLocked(uint64_t request_id);
  // Frames that release something (task replies, RemoveBorrower) wait while
  // a borrower registration of this process is unacknowledged.
  void QueueReleasingLocked(const std::shared_ptr<Connection>& c, flatbuffers::DetachedBuffer frame);
  std::vector<NestedRefIn> TakeStagedLocked();
  void HoldNestedLocked(const std::vector<NestedRefIn>& nested, const ObjectID* outer, std::vector<ObjectID>* held);
  void AdoptNestedLocked(const ObjectID& outer, bool outer_alive, const proto::ReturnObject* ret);
  void RecordLineageLocked(const std::shared_ptr<Pending>& t);
  bool PlasmaContainsLocked(const ObjectID& id);
  Status ReconstructLocked(const ObjectID& id, int depth);
  void ResubmitLocked(const TaskID& task, const SubmitRequest& req);
  void FailRemoteWaitersLocked(const ObjectID& id, const Status& s);
  std::string MemorySummaryJsonLocked();

  CoreWorkerOptions opts_;
  NodeID node_id_;
  JobID job_id_ = 0;
  std::string session_dir_;
  std::unique_ptr<plasma::ShmRegion> store_;
  BlockingChannel plasma_;
  gcs::GcsClient gcs_client_{&plasma_};

  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
  std::thread io_thread_;
  std::shared_ptr<Connection> control_;

  std::mutex mu_;
  bool shutting_down_ = false;
  MemoryStore memory_store_;
  ReferenceCounter refs_;
  std::vector<Event> events_;
  std::vector<std::pair<std::shared_ptr<Connection>, flatbuffers::DetachedBuffer>> outbox_;
  std::atomic<bool> host_flush_requested_{false};
  bool io_flush_scheduled_ = false;  // guarded by mu_
  bool notify_pending_ = false;      // guarded by mu_
  std::atomic<std::thread::id> io_thread_id_{};

  TaskID put_task_id_;
  uint64_t put_counter_ = 0;
  uint64_t task_counter_ = 0;
  uint64_t next_request_id_ = 1;
  std::vector<std::shared_ptr<const TaskClass>> task_classes_;

  std::unordered_set<ObjectID, IdHash> js_subscribed_;
  std::unordered_map<ObjectID, std::vector<std::shared_ptr<Pending>>, IdHash> dependents_;
  std::unordered_map<ObjectID, std::vector<std::pair<std::shared_ptr<Connection>, uint64_t>>, IdHash> remote_waiters_;
  std::unordered_set<ObjectID, IdHash> borrowed_fetching_;

  std::unordered_map<uint64_t, std::unique_ptr<KeyState>> keys_;
  std::unordered_map<uint64_t, uint64_t> lease_requests_;        // request id -> key
  std::unordered_map<uint64_t, uint64_t> actor_waits_;           // GCS request id -> actor key
  std::vector<std::weak_ptr<Connection>> inbound_;               // connections accepted here
  std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> tasks_;  // submitted, not finished
  std::unordered_map<std::string, std::shared_ptr<Connection>> owner_conns_;

  // Ownership (ownership.cc).
  LineageCache lineage_;
  std::vector<NestedRefIn> staged_nested_;
  std::unordered_map<uint64_t, std::string> pending_acks_;  // AddBorrower request id -> owner address
  std::vector<std::pair<std::shared_ptr<Connection>, flatbuffers::DetachedBuffer>> deferred_;
  std::unordered_set<ObjectID, IdHash> recover_requested_;   // kRecoverObject emitted, not handled yet
  uint64_t reconstructions_ = 0;                              // tasks re-run to recover lost objects
  std::unordered_map<ObjectID, uint64_t, IdHash> creating_sizes_;  // PlasmaCreate -> PlasmaSeal

  // Execution side.
  struct Executing {
    std::weak_ptr<Connection> conn; TaskID task_id; int num_returns; int64_t streamed = 0;
    std::string caller_address;  // borrower of the refs inside the return values
  };
  std::unordered_map<uint64_t, Executing> executing_;
  std::unordered_map<TaskID, uint64_t, IdHash> executing_by_task_;
  // Tasks this process submitted while executing a task (by that task's
  // id), for recursive cancellation. Dropped when the parent replies.
  std::unordered_map<TaskID, std::vector<TaskID>, IdHash> children_;
  uint64_t next_exec_handle_ = 1;
  int blocked_depth_ = 0;
  // Executor side of an actor: each caller's calls run in its send order
  // (ActorSchedulingQueue); calls waiting for their turn are held here.
  struct CallerOrder;
  std::unordered_map<WorkerID, std::unique_ptr<CallerOrder>, IdHash> callers_;
  std::unordered_map<uint64_t, std::shared_ptr<ExecTask>> held_calls_;  // by exec handle
  int actor_max_concurrency_ = 0;
  std::unordered_map<ObjectID, TaskID, IdHash> actor_tokens_;  // handle token -> owned actor  // from the constructor call; > 1: calls are not ordered
};

}  // namespace rayts
