// WorkerPool: the raylet's set of worker processes and who may use them.
//
// Role: starts workers through a WorkerLauncher (the process seam; tests use
// a fake), tracks each worker as starting (launched, not yet registered),
// idle (registered, free) or leased (handed out by PopWorker), and hands idle
// workers to PopWorker callbacks. ProcessWorkerLauncher is the real launcher
// (Spawn, spawn.h: clone without copying the host's memory, then execve);
// it lives here because the pool is its only client.
// Ownership: the pool does not own the launcher; the launcher must outlive
// it. Pop callbacks are owned by the pool until called (each exactly once).
// Thread safety: none. Single-threaded; the node server calls every method
// on its io thread. Callbacks run synchronously inside pool methods and may
// re-enter the pool.
// Invariants:
//   * starting + idle + leased workers, minus blocked ones, <= max_workers
//     (a blocked worker is parked in a get and does not count, so nested
//     tasks cannot deadlock the pool; unblocking may exceed the cap briefly).
//   * waiting PopWorker callbacks exist only while no worker is idle.
//   * waiters are served oldest first; a worker that dies while starting is
//     replaced, never dropping a waiter, until start_attempts starts in a row
//     have failed (Ray: a worker that cannot start fails its lease requests
//     instead of respawning for ever).
// Start failures: a worker that dies before it registers
// (OnWorkerStartFailed) is a start failure of the pool's one worker shape
// (the job's argv, env and working dir). After the k-th failure in a row the
// next start waits start_backoff * 2^(k-1); the start_attempts-th fails every
// waiter with Unavailable carrying the last worker's cause ("exited with
// code 9; stderr: ..."), and the count starts over, so a later PopWorker
// tries again. A registration, or start_failures_forgotten without a
// failure, resets the count.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"

namespace rayts::raylet {

// Starts and kills worker processes. The interface is the seam between the
// pool's logic and the OS.
class WorkerLauncher {
 public:
  virtual ~WorkerLauncher() = default;
  // Starts a worker that will register as `id`; returns its pid.
  virtual StatusOr<int> Launch(const WorkerID& id) = 0;
  // Forcefully stops a worker this launcher started (no-op for other pids).
  virtual void Kill(int pid) = 0;
};

// Launches workers as child processes (Spawn, spawn.h): execve of
// config.argv with config.env plus RAYTS_WORKER_ID=<worker id hex>, in
// config.working_dir. The host's memory is not copied: a fork of a Node
// driver held its mmap lock (its JS thread waited) and write-protected all
// its pages. The child asks for SIGKILL when its parent goes away
// (PR_SET_PDEATHSIG; on Linux that fires when the *thread* that launched it
// exits, which is the raylet io thread, i.e. at raylet shutdown), resets
// signal mask and dispositions, and closes every fd >= 3 before exec (with
// on_output set, fds 1 and 2 are the write ends of two pipes whose read ends
// go to on_output). A chdir or exec failure is returned by Launch instead of
// a pid that dies at once.
// Thread safety: none (single-threaded, like the pool).
class ProcessWorkerLauncher : public WorkerLauncher {
 public:
  struct Config {
    std::vector<std::string> argv;  // argv[0] is the executable's path (no PATH search)
    std::vector<std::string> env;   // "NAME=value" entries; RAYTS_WORKER_ID is set by Launch
    std::string working_dir;        // empty: inherit the raylet's
    // Set: the child's stdout and stderr are pipes, and this gets their read
    // ends (owned by the callee) once the exec succeeded. Unset: the child
    // shares the raylet's stdout/stderr.
    std::function<void(const WorkerID& id, int pid, int out_fd, int err_fd)> on_output;
  };

  explicit ProcessWorkerLauncher(Config config);
  ~ProcessWorkerLauncher() override = default;  // kills nothing: see PDEATHSIG above

  StatusOr<int> Launch(const WorkerID& id) override;
  // Sends SIGKILL, but only to a pid launched here and not yet reaped (a
  // reaped pid may already belong to another process).
  void Kill(int pid) override;
  // Collects children of this launcher that have exited, without blocking
  // (waitpid(pid, WNOHANG) on each launched pid, never waitpid(-1)). Appends
  // (pid, code) where code >= 0 is the exit status and code < 0 is minus the
  // terminating signal. A pid somebody else reaped is dropped and reported
  // as Internal after the others are collected.
  Status Reap(std::vector<std::pair<int, int>>* exited);
  size_t num_running() const { return running_.size(); }

 private:
  Config config_;
  std::unordered_set<int> running_;  // launched and not yet reaped
};

// How the pool gives up on workers that cannot start (see the top).
struct WorkerStartPolicy {
  int start_attempts = 3;                                     // > 0
  std::chrono::milliseconds start_backoff{100};               // doubles per failure
  std::chrono::milliseconds start_failures_forgotten{10000};  // a count this old starts over
};

class WorkerPool {
 public:
  using PopCallback = std::function<void(StatusOr<WorkerID>)>;
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  using StartPolicy = WorkerStartPolicy;

  // `launcher` is not owned. max_workers > 0. `now` (default: the steady
  // clock) times the backoff between start attempts.
  WorkerPool(WorkerLauncher* launcher, int max_workers, StartPolicy policy = {}, Clock now = {});
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts up to n workers (fewer if that would pass max_workers); they
  // become idle when they register. Best effort: stops at a launch failure.
  void Prestart(int n);

  // Calls cb with an idle worker at once (the most recently idle one, warm
  // caches first), or queues cb and starts a worker if the waiters outnumber
  // the starting workers and the cap allows. At the cap, cb waits for a
  // worker to come back (PushIdleWorker) or to die (a replacement starts).
  // If the launch fails, the newest waiter no starting worker will serve
  // gets the launch error.
  void PopWorker(PopCallback cb);

  // A started worker connected. InvalidArgument if `id` was not launched
  // here, is already registered, or `pid` is not the pid it was launched as.
  // The worker goes to the oldest waiter, else becomes idle.
  Status OnWorkerRegistered(const WorkerID& id, int pid);

  // A leased worker is free again (its lease was returned). Goes to the
  // oldest waiter, else becomes idle. Ignored for an unknown (dead) worker.
  void PushIdleWorker(const WorkerID& id);

  // The worker's process exited or its connection dropped: kill it (in case
  // it still runs), forget it, and start replacements for waiters if the cap
  // now allows.
  void OnWorkerDied(const WorkerID& id);

  // A starting worker's process ended before it registered (`cause`: how,
  // e.g. "exited with code 9; stderr: node: bad option"): forget it, count a
  // start failure, and either start a replacement for waiters after the
  // backoff (Tick) or, at the start_attempts-th failure in a row, fail every
  // waiter with Unavailable. Ignored for a worker not starting.
  void OnWorkerStartFailed(const WorkerID& id, const std::string& cause);

  // Starts the replacements a start backoff held back once it has passed.
  // The node server calls it periodically.
  void Tick();

  // Start failures in a row so far (reset by a registration, a give-up, or
  // start_failures_forgotten without one).
  int start_failures() const { return start_failures_; }

  // A leased worker blocked in (or returned from) a get. While blocked it
  // does not count against max_workers. Ignored for a worker not leased.
  void SetWorkerBlocked(const WorkerID& id, bool blocked);

  // Idle workers to end so the pool shrinks back after a burst (Ray: idle
  // past idle_worker_killing_time_threshold_ms while the pool is above its
  // soft limit): the longest-idle workers idle since `after` or more before
  // `now`, as many as the pool has above `soft_limit`. Changes nothing; the
  // caller ends them (OnWorkerDied).
  std::vector<WorkerID> IdleWorkersToEnd(std::chrono::steady_clock::time_point now, int soft_limit,
                                         std::chrono::milliseconds after) const;

  // Kills every worker, forgets them, and fails waiting callbacks with
  // Cancelled. For shutdown.
  void KillAll();

  std::vector<WorkerID> AllWorkers() const;  // starting, idle and leased
  // The worker launched as `pid`, if the pool still tracks it (a worker that
  // died before registering is known to the pool only by its pid).
  std::optional<WorkerID> WorkerOfPid(int pid) const;
  int num_idle() const { return static_cast<int>(idle_.size()); }
  int num_starting() const { return num_starting_; }
  int num_waiting() const { return static_cast<int>(waiters_.size()); }
  std::optional<int> PidOf(const WorkerID& id) const;
  int max_workers() const { return max_workers_; }

 private:
  enum class State { kStarting, kIdle, kLeased };
  struct Worker {
    int pid = 0;
    State state = State::kStarting;
    bool blocked = false;  // only while kLeased
    std::chrono::steady_clock::time_point idle_since{};  // while kIdle
  };

  // Workers that count against max_workers.
  int NumCounted() const { return static_cast<int>(workers_.size()) - num_blocked_; }
  Status StartWorker();
  // Starts workers while waiters outnumber starting workers and the cap
  // allows; fails the uncovered newest waiters if a launch fails.
  void MaybeStartWorkers();
  // Gives a registered, non-leased worker to the oldest waiter or idles it.
  void Assign(const WorkerID& id, Worker& w);
  void RemoveIdle(const WorkerID& id);

  // Forgets the worker (any state) and kills its process.
  void Forget(std::unordered_map<WorkerID, Worker, IdHash>::iterator it);

  WorkerLauncher* launcher_;
  const int max_workers_;
  const StartPolicy policy_;
  const Clock now_;
  int start_failures_ = 0;
  std::chrono::steady_clock::time_point last_start_failure_{};
  std::chrono::steady_clock::time_point next_start_at_{};  // backoff: no start before
  std::unordered_map<WorkerID, Worker, IdHash> workers_;
  std::vector<WorkerID> idle_;        // back = most recently idle
  std::deque<PopCallback> waiters_;   // front = oldest
  int num_starting_ = 0;
  int num_blocked_ = 0;
};

}  // namespace rayts::raylet
