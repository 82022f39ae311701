// WorkerContext: what every component of a CoreWorker shares: the process's
// identity, the core lock, the queue of events for the host, and the id
// counters.
//
// Role: the CoreWorker's components (ObjectManager, BorrowerProtocol,
// TaskManager, NormalTaskSubmitter, ActorTaskSubmitter, TaskReceiver) each
// keep their own state, and all of it is guarded by one lock, this
// context's. One lock per process runtime: a host call (submit, get, a
// reply batch on the io thread) takes it once, and no component waits for
// another's lock, so there is no lock order to get wrong. The analysis names
// that lock `core_lock` (a role: every context's mutex is "the core lock" to
// clang's -Wthread-safety), so GUARDED_BY(core_lock) / REQUIRES(core_lock)
// are checked across components.
// Events: components Emit() with the lock held; the host is notified when
// the lock is released (CoreGuard), so the thread it wakes does not find the
// lock still held.
// Thread safety: Lock/Unlock/DrainEvents from any thread; the rest as
// annotated. Identity is set once (SetNode) before any other thread runs.
#pragma once

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "core/common/id.h"
#include "core/common/thread_annotations.h"
#include "core/core_worker/dead_nodes.h"
#include "core/core_worker/task_types.h"

namespace rayts {

// The capability the analysis checks: "this process runtime's core lock".
class CAPABILITY("mutex") CoreLockRole {};
extern CoreLockRole core_lock;

class WorkerContext {
 public:
  explicit WorkerContext(CoreWorkerOptions opts)
      : opts_(std::move(opts)), address_(opts_.listen_path), task_prefix_(TaskID::FromRandom()) {}
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;

  const CoreWorkerOptions& opts() const { return opts_; }
  const WorkerID& worker_id() const { return opts_.worker_id; }
  // This process's address for other processes: its listen socket, and in
  // cluster mode its TCP endpoint too (peer_address.h).
  const std::string& address() const { return address_; }
  // Set once, by CoreWorker::Connect before anything reads it.
  void SetAddress(std::string address) { address_ = std::move(address); }
  bool is_driver() const { return opts_.is_driver; }
  const NodeID& node_id() const { return node_id_; }
  JobID job_id() const { return job_id_; }
  const std::string& session_dir() const { return session_dir_; }
  void SetNode(const NodeID& node, JobID job, std::string session_dir) {
    node_id_ = node;
    job_id_ = job;
    session_dir_ = std::move(session_dir);
  }
  // `address` is this process (empty means "here" in ref records).
  bool IsSelf(const std::string& address) const { return address.empty() || address == address_; }

  void Lock() ACQUIRE(core_lock) NO_THREAD_SAFETY_ANALYSIS { mu_.Lock(); }
  // For handlers that a component runs while the lock is held (a hook
  // called from inside another component): tells the analysis so.
  void AssertHeld() const ASSERT_CAPABILITY(core_lock) {}
  // Notifies the host if events were queued while the lock was held.
  void Unlock() RELEASE(core_lock) NO_THREAD_SAFETY_ANALYSIS;

  void Emit(Event e) REQUIRES(core_lock) {
    if (events_.empty()) notify_pending_ = true;
    events_.push_back(std::move(e));
  }
  std::vector<Event> DrainEvents();

  uint64_t NextRequestId() REQUIRES(core_lock) { return next_request_id_++; }
  // Task ids of this process: its random prefix, then a counter in bytes
  // 8..15 (ids of one process sort by submission order on that counter).
  TaskID NextTaskId() REQUIRES(core_lock) {
    TaskID tid = task_prefix_;
    uint64_t counter = ++task_counter_;
    std::memcpy(tid.bytes.data() + 8, &counter, 8);
    return tid;
  }
  ObjectID NextPutId() REQUIRES(core_lock) {
    return ObjectIdFor(task_prefix_, kPutIndexBit | static_cast<uint32_t>(++put_counter_ & 0x7fffffff));
  }

  // The nodes this process heard are dead (NodeDied; dead_nodes.h).
  DeadNodes& dead_nodes() REQUIRES(core_lock) { return dead_nodes_; }
  const DeadNodes& dead_nodes() const REQUIRES(core_lock) { return dead_nodes_; }

  // Set once by Shutdown; read by close handlers on the io thread too.
  std::atomic<bool> shutting_down{false};

 private:
  const CoreWorkerOptions opts_;
  std::string address_;
  NodeID node_id_;
  JobID job_id_ = 0;
  std::string session_dir_;
  const TaskID task_prefix_;  // also the "task" of this process's ray.put objects
  Mutex mu_;
  std::vector<Event> events_ GUARDED_BY(core_lock);
  bool notify_pending_ GUARDED_BY(core_lock) = false;
  uint64_t next_request_id_ GUARDED_BY(core_lock) = 1;
  uint64_t task_counter_ GUARDED_BY(core_lock) = 0;
  uint64_t put_counter_ GUARDED_BY(core_lock) = 0;
  DeadNodes dead_nodes_ GUARDED_BY(core_lock);
};

// Holds the core lock for a scope.
class SCOPED_CAPABILITY CoreGuard {
 public:
  explicit CoreGuard(WorkerContext& ctx) ACQUIRE(core_lock) : ctx_(ctx) { ctx_.Lock(); }
  ~CoreGuard() RELEASE() { ctx_.Unlock(); }
  CoreGuard(const CoreGuard&) = delete;
  CoreGuard& operator=(const CoreGuard&) = delete;

 private:
  WorkerContext& ctx_;
};

}  // namespace rayts
