// CoreWorker: the runtime inside every rayts process (driver and workers).
//
// Role: owns this process's objects (MemoryStore + ReferenceCounter), submits
// tasks through worker leases with direct push to the leased worker
// (TaskSubmitter), receives tasks pushed to this process and hands them to the
// host language, and talks to the node server: a PlasmaClient for plasma
// (blocking create/get/release; the store memfd is mapped once at Start) and
// an async control connection for leases and GCS calls.
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
// actor_submission.cc (owner side of actors), task_execution.cc (tasks
// pushed to this process), task_termination.cc (cancel, retries) and
// ownership.cc (borrower protocol, lineage reconstruction, memory summary).
// Components: PlasmaClient (plasma_client.h: the plasma channel, the mapped
// store, the synchronous GCS calls; thread-safe, reached through plasma())
// and one ActorState per actor called (actor_state.h, under mu_).
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

#include "core/common/thread_annotations.h"
#include "core/gcs/gcs_client.h"
#include "core/common/id.h"
#include "core/common/status.h"
#include "core/core_worker/lineage_cache.h"
#include "core/core_worker/memory_store.h"
#include "core/core_worker/plasma_client.h"
#include "core/core_worker/reference_counter.h"
#include "core/protocol/connection.h"

namespace rayts {

struct ActorState;  // actor_state.h

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
  // The plasma client: Get/Release/Lose, the mapped store (base, size) and
  // the synchronous GCS calls (gcs()) need no CoreWorker state.
  PlasmaClient& plasma() { return plasma_; }

  // ---- objects ----
  ObjectID NextPutId();
  void PutInline(const ObjectID& id, std::shared_ptr<const std::string> data);
  // NextPutId + PutInline under one lock.
  ObjectID PutInlineNew(std::shared_ptr<const std::string> data);
  // Allocates `size` bytes in plasma for `id`; the host writes, then seals.
  // allow_spill = false: the store answers OutOfMemory rather than spill.
  StatusOr<uint64_t> PlasmaCreate(const ObjectID& id, uint64_t size, bool allow_spill = true);
  Status PlasmaSeal(const ObjectID& id, bool owned_put);
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
  // JSON summary of every object this process knows (see ts/memory.ts).
  std::string MemorySummaryJson();

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
  // actor_exited: the method called ray.exitActor(); the process ends next.
  void TaskDone(uint64_t handle, std::vector<ReturnValue> returns, bool retryable = false, bool actor_exited = false);
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
  class SCOPED_CAPABILITY Guard {
   public:
    explicit Guard(CoreWorker* cw) ACQUIRE(cw->mu_) : cw_(cw) { cw_->mu_.Lock(); }
    ~Guard() RELEASE();
   private:
    CoreWorker* cw_;
  };

  explicit CoreWorker(CoreWorkerOptions opts);
  Status Connect();
  void Accept();
  void OnInbound(const std::shared_ptr<Connection>& c, const proto::Envelope& env);
  void OnControl(const proto::Envelope& env);
  void OnWorkerMessage(const std::shared_ptr<Lease>& lease, const proto::Envelope& env);
  void OnOwnerMessage(const std::string& address, const proto::Envelope& env);

  // All below: caller holds mu_.
  void EmitLocked(Event e) REQUIRES(mu_);
  void QueueControlLocked(flatbuffers::DetachedBuffer frame) REQUIRES(mu_);
  void QueueToLocked(const std::shared_ptr<Connection>& c, flatbuffers::DetachedBuffer frame) REQUIRES(mu_);
  void SendOutboxLocked() REQUIRES(mu_);
  void ObjectReadyLocked(const ObjectID& id) REQUIRES(mu_);
  void StoreResultLocked(const ObjectID& id, const proto::ReturnObject* ret) REQUIRES(mu_);
  void StoreErrorLocked(const ObjectID& id, const std::string& json) REQUIRES(mu_);
  void FailTaskLocked(const std::shared_ptr<Pending>& t, const std::string& json) REQUIRES(mu_);
  void ResolveDependenciesLocked(const std::shared_ptr<Pending>& t) REQUIRES(mu_);
  void EnqueueReadyLocked(const std::shared_ptr<Pending>& t) REQUIRES(mu_);
  void DispatchLocked(KeyState& ks) REQUIRES(mu_);
  void PushLocked(const std::shared_ptr<Lease>& lease, const std::shared_ptr<Pending>& t) REQUIRES(mu_);
  void RequestLeaseLocked(KeyState& ks) REQUIRES(mu_);
  void OnLeaseReplyLocked(const proto::LeaseReply* r) REQUIRES(mu_);
  void MaybeReturnLeaseLocked(const std::shared_ptr<Lease>& lease) REQUIRES(mu_);
  void ReturnLeaseLocked(const std::shared_ptr<Lease>& lease, bool worker_exiting) REQUIRES(mu_);
  void OnLeaseConnectionClosedLocked(const std::shared_ptr<Lease>& lease, const Status& s) REQUIRES(mu_);
  void OnPushReplyLocked(const std::shared_ptr<Lease>& lease, const proto::PushTaskReply* r) REQUIRES(mu_);
  void FinishTaskLocked(const std::shared_ptr<Pending>& t) REQUIRES(mu_);
  void OnReleased(const ObjectID& id, const ReferenceCounter::Ref& ref) REQUIRES(mu_);
  void ActorDiedLocked(KeyState& ks, ActorState& a, const std::string& cause) REQUIRES(mu_);
  void AskActorAddressLocked(KeyState& ks, ActorState& a) REQUIRES(mu_);
  void OnActorAddressLocked(KeyState& ks, ActorState& a, const StatusOr<gcs::ActorLocation>& where) REQUIRES(mu_);
  bool ConnectLeaseLocked(const std::shared_ptr<Lease>& lease) REQUIRES(mu_);
  StatusOr<TaskID> SubmitLocked(SubmitRequest req, uint64_t key, std::vector<ObjectID>* return_ids) REQUIRES(mu_);
  void PinOwnedArgLocked(const std::shared_ptr<Pending>& t, const ObjectID& id) REQUIRES(mu_);
  std::shared_ptr<Pending> NewPendingLocked(SubmitRequest req, uint64_t key, std::vector<ObjectID>* return_ids) REQUIRES(mu_);
  // Actors (actor_submission.cc). Each takes the actor's lease state (its
  // KeyState) and its ActorState (actors_, same key) where it needs both.
  ActorState& NewActorLocked(const TaskID& actor, bool borrowed) REQUIRES(mu_);
  StatusOr<TaskID> SubmitActorTaskLocked(SubmitRequest req, std::vector<ObjectID>* return_ids) REQUIRES(mu_);
  void KillActorLocked(const TaskID& actor, const std::string& cause, bool no_restart, bool when_idle) REQUIRES(mu_);
  void ActorTokenReleasedLocked(const ObjectID& token) REQUIRES(mu_);
  void DispatchActorLocked(KeyState& ks, ActorState& a) REQUIRES(mu_);
  void ActorConnectedLocked(ActorState& a) REQUIRES(mu_);
  void TakeActorFailuresLocked(ActorState& a) REQUIRES(mu_);
  void BorrowedActorLostLocked(KeyState& ks, ActorState& a, const std::string& cause) REQUIRES(mu_);
  void SubmitCreationLocked(KeyState& ks, const ActorState& a) REQUIRES(mu_);
  bool ActorIdleLocked(const KeyState& ks, const ActorState& a) const REQUIRES(mu_);
  void MaybeEndIdleActorLocked(KeyState& ks, ActorState& a) REQUIRES(mu_);
  TaskID NextTaskIdLocked() REQUIRES(mu_);
  void ActorWorkerLostLocked(KeyState& ks, ActorState& a,
                             std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> inflight,
                             const std::string& cause) REQUIRES(mu_);
  std::shared_ptr<Connection> OwnerConnectionLocked(const std::string& address) REQUIRES(mu_);
  void SendReplyLocked(uint64_t handle, std::vector<ReturnValue> returns, int code, const std::string& msg,
                       bool retryable = false, bool actor_exited = false) REQUIRES(mu_);
  // task_termination.cc: cancellation, retries, the memory monitor's kill.
  Status CancelTaskLocked(const TaskID& task, bool force, bool recursive) REQUIRES(mu_);
  void NoteChildLocked(const TaskID& parent, const TaskID& child) REQUIRES(mu_);
  bool RetryLocked(const std::shared_ptr<Pending>& t) REQUIRES(mu_);
  void OnCancelRequestLocked(const proto::CancelTask* ct) REQUIRES(mu_);
  void OnKillWorkerLocked(const std::string& reason) REQUIRES(mu_);
  void OrderActorCallLocked(const std::shared_ptr<Connection>& c, const WorkerID& caller, uint64_t seq,
                            uint64_t epoch_start, std::shared_ptr<ExecTask> task) REQUIRES(mu_);
  void ReleaseActorCallsLocked(const WorkerID& caller, std::vector<uint64_t> runnable) REQUIRES(mu_);
  void DropCallerLocked(const std::shared_ptr<Connection>& c) REQUIRES(mu_);
  // ownership.cc
  void OnPeerClosedLocked(const std::string& address, const std::shared_ptr<Connection>& c) REQUIRES(mu_);
  bool IsSelf(const std::string& address) const { return address.empty() || address == opts_.listen_path; }
  void RegisterBorrowLocked(const ObjectID& id, const std::string& owner) REQUIRES(mu_);
  void RegisterOnBehalfLocked(const ObjectID& id, const std::string& owner, const std::string& borrower) REQUIRES(mu_);
  void WatchBorrowerLocked(const std::string& address) REQUIRES(mu_);
  void OnBorrowerMessageLocked(const std::shared_ptr<Connection>& c, const proto::Envelope& env) REQUIRES(mu_);
  void AckedLocked(uint64_t request_id) REQUIRES(mu_);
  // Frames that release something (task replies, RemoveBorrower) wait while
  // a borrower registration of this process is unacknowledged.
  void QueueReleasingLocked(const std::shared_ptr<Connection>& c, flatbuffers::DetachedBuffer frame) REQUIRES(mu_);
  std::vector<NestedRefIn> TakeStagedLocked() REQUIRES(mu_);
  void HoldNestedLocked(const std::vector<NestedRefIn>& nested, const ObjectID* outer, std::vector<ObjectID>* held) REQUIRES(mu_);
  void AdoptNestedLocked(const ObjectID& outer, bool outer_alive, const proto::ReturnObject* ret) REQUIRES(mu_);
  void RecordLineageLocked(const std::shared_ptr<Pending>& t) REQUIRES(mu_);
  Status ReconstructLocked(const ObjectID& id, int depth) REQUIRES(mu_);
  void ResubmitLocked(const TaskID& task, const SubmitRequest& req) REQUIRES(mu_);
  void FailRemoteWaitersLocked(const ObjectID& id, const Status& s) REQUIRES(mu_);
  std::string MemorySummaryJsonLocked() REQUIRES(mu_);

  CoreWorkerOptions opts_;
  NodeID node_id_;
  JobID job_id_ = 0;
  std::string session_dir_;
  PlasmaClient plasma_;  // thread-safe (its channel's lock); the store mapping, set once by Connect

  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
  std::thread io_thread_;
  std::shared_ptr<Connection> control_;

  Mutex mu_;  // guards every member below (except atomics)
  std::atomic<bool> shutting_down_{false};  // also read by the control connection's close handler
  MemoryStore memory_store_ GUARDED_BY(mu_);
  ReferenceCounter refs_ GUARDED_BY(mu_);
  std::vector<Event> events_ GUARDED_BY(mu_);
  std::vector<std::pair<std::shared_ptr<Connection>, flatbuffers::DetachedBuffer>> outbox_ GUARDED_BY(mu_);
  std::atomic<bool> host_flush_requested_{false};
  bool io_flush_scheduled_ GUARDED_BY(mu_) = false;
  bool notify_pending_ GUARDED_BY(mu_) = false;
  std::atomic<std::thread::id> io_thread_id_{};

  TaskID put_task_id_ GUARDED_BY(mu_);
  uint64_t put_counter_ GUARDED_BY(mu_) = 0;
  uint64_t task_counter_ GUARDED_BY(mu_) = 0;
  uint64_t next_request_id_ GUARDED_BY(mu_) = 1;
  std::vector<std::shared_ptr<const TaskClass>> task_classes_ GUARDED_BY(mu_);

  std::unordered_set<ObjectID, IdHash> js_subscribed_ GUARDED_BY(mu_);
  std::unordered_map<ObjectID, std::vector<std::shared_ptr<Pending>>, IdHash> dependents_ GUARDED_BY(mu_);
  std::unordered_map<ObjectID, std::vector<std::pair<std::shared_ptr<Connection>, uint64_t>>, IdHash> remote_waiters_ GUARDED_BY(mu_);
  std::unordered_set<ObjectID, IdHash> borrowed_fetching_ GUARDED_BY(mu_);

  std::unordered_map<uint64_t, std::unique_ptr<KeyState>> keys_ GUARDED_BY(mu_);
  // The actors this process calls (owned or borrowed), by the key of their
  // lease state in keys_ (actor_submission.cc).
  std::unordered_map<uint64_t, std::unique_ptr<ActorState>> actors_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, uint64_t> lease_requests_ GUARDED_BY(mu_);        // request id -> key
  std::unordered_map<uint64_t, uint64_t> actor_waits_ GUARDED_BY(mu_);           // GCS request id -> actor key
  std::vector<std::weak_ptr<Connection>> inbound_ GUARDED_BY(mu_);               // connections accepted here
  std::unordered_map<TaskID, std::shared_ptr<Pending>, IdHash> tasks_ GUARDED_BY(mu_);  // submitted, not finished
  std::unordered_map<std::string, std::shared_ptr<Connection>> owner_conns_ GUARDED_BY(mu_);

  // Ownership (ownership.cc).
  LineageCache lineage_ GUARDED_BY(mu_);
  std::vector<NestedRefIn> staged_nested_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::string> pending_acks_ GUARDED_BY(mu_);  // AddBorrower request id -> owner address
  std::vector<std::pair<std::shared_ptr<Connection>, flatbuffers::DetachedBuffer>> deferred_ GUARDED_BY(mu_);
  std::unordered_set<ObjectID, IdHash> recover_requested_ GUARDED_BY(mu_);   // kRecoverObject emitted, not handled yet
  uint64_t reconstructions_ GUARDED_BY(mu_) = 0;                              // tasks re-run to recover lost objects
  std::unordered_map<ObjectID, uint64_t, IdHash> creating_sizes_ GUARDED_BY(mu_);  // PlasmaCreate -> PlasmaSeal

  // Execution side.
  struct Executing {
    std::weak_ptr<Connection> conn; TaskID task_id; int num_returns; int64_t streamed = 0;
    std::string caller_address;  // borrower of the refs inside the return values
  };
  std::unordered_map<uint64_t, Executing> executing_ GUARDED_BY(mu_);
  std::unordered_map<TaskID, uint64_t, IdHash> executing_by_task_ GUARDED_BY(mu_);
  // Tasks this process submitted while executing a task (by that task's
  // id), for recursive cancellation. Dropped when the parent replies.
  std::unordered_map<TaskID, std::vector<TaskID>, IdHash> children_ GUARDED_BY(mu_);
  uint64_t next_exec_handle_ GUARDED_BY(mu_) = 1;
  int blocked_depth_ GUARDED_BY(mu_) = 0;
  // Executor side of an actor: each caller's calls run in its send order
  // (ActorSchedulingQueue); calls waiting for their turn are held here.
  struct CallerOrder;
  std::unordered_map<WorkerID, std::unique_ptr<CallerOrder>, IdHash> callers_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::shared_ptr<ExecTask>> held_calls_ GUARDED_BY(mu_);  // by exec handle
  int actor_max_concurrency_ GUARDED_BY(mu_) = 0;
  std::unordered_map<ObjectID, TaskID, IdHash> actor_tokens_ GUARDED_BY(mu_);  // handle token -> owned actor
};

}  // namespace rayts
