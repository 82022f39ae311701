// CrashCauses: how the workers this process leased ended, as the node
// reports them (WorkerDied: exit code or signal, last stderr lines), for
// the tasks that fail because their worker died.
//
// Role: a leased worker's connection closing says only that it is gone;
// the node learns how when it reaps the process (within its 100 ms reap
// period) and then tells the lease's owner. The submitter hands the tasks
// it must fail to AwaitLocked, which runs the failure once the node's
// notice is here (at once when it came first), or after a bound without
// it. Ray's owner asks its raylet the same (GetWorkerFailureCause). A
// worker leased from another node gets no notice (WorkerDied comes from
// this process's node): its wait ends when that node is reported dead
// (OnNodeDeadLocked; the failure then names the node's death) or after
// kRemoteWait, the time a killed node takes to fail its health checks
// with the short settings tests use.
// Ownership: owned by the NormalTaskSubmitter; owns its timers.
// Thread safety: every method requires the core lock (worker_context.h);
// timer handlers run with it held (transport.h).
// Invariants: each awaiting callback runs exactly once, unless the process
// shuts down first; at most kKeptCauses notices nobody asked for are kept.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/common/id.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

struct WorkerExitCause {
  int pid = 0;
  int exit_code = -1;  // >= 0: it exited with this code
  int signal = 0;      // > 0: this signal ended it
  std::string stderr_tail;
  // "exited with code 3" / "was killed by signal 9 (SIGKILL)"
  std::string How() const;
};

class CrashCauses {
 public:
  // How long a failure waits for the node's notice (it normally comes
  // within the node's 100 ms reap period).
  static constexpr auto kWait = std::chrono::milliseconds(2000);
  static constexpr auto kRemoteWait = std::chrono::milliseconds(5000);
  static constexpr size_t kKeptCauses = 64;
  using Then = std::function<void(const std::optional<WorkerExitCause>&)>;

  CrashCauses(WorkerContext& ctx, Transport& transport) : ctx_(ctx), transport_(transport) {}

  // The node's WorkerDied notice.
  void OnWorkerDiedLocked(const proto::WorkerDied& d) REQUIRES(core_lock);
  // Runs `then` with how worker `id` ended once the node said so, or with
  // nullopt after kWait. `node`: the worker was leased from the node server
  // at that address (another node): nullopt once that node is reported
  // dead, or after kRemoteWait.
  void AwaitLocked(const WorkerID& id, Then then, const std::string& node = "") REQUIRES(core_lock);
  // The node whose server is at `node` died: its workers' waits end now.
  void OnNodeDeadLocked(const std::string& node) REQUIRES(core_lock);

 private:
  struct Waiting {
    std::vector<Then> then;
    std::unique_ptr<Timer> timer;
    std::string node;  // a worker of another node: its node server's address
  };
  void RunLocked(const WorkerID& id, const std::optional<WorkerExitCause>& cause) REQUIRES(core_lock);

  WorkerContext& ctx_;
  Transport& transport_;
  std::unordered_map<WorkerID, WorkerExitCause, IdHash> known_ GUARDED_BY(core_lock);
  std::deque<WorkerID> known_order_ GUARDED_BY(core_lock);  // oldest first
  std::unordered_map<WorkerID, Waiting, IdHash> waiting_ GUARDED_BY(core_lock);
};

// The error record of a task whose worker died: its message names the task,
// how the worker ended (when known) and its last stderr lines; the record
// carries exitCode / signal / stderr for WorkerCrashedError.
std::string WorkerCrashedJson(const std::string& task_name, const std::optional<WorkerExitCause>& cause,
                              const std::string& fallback);

}  // namespace rayts
