#include "core/raylet/worker_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "core/raylet/spawn.h"

namespace rayts::raylet {

// ---- ProcessWorkerLauncher ------------------------------------------------

namespace {

constexpr char kWorkerIdEnv[] = "RAYTS_WORKER_ID=";

}  // namespace

ProcessWorkerLauncher::ProcessWorkerLauncher(Config config) : config_(std::move(config)) {}

StatusOr<int> ProcessWorkerLauncher::Launch(const WorkerID& id) {
  if (config_.argv.empty()) {
    return Status::InvalidArgument("worker launcher: argv is empty");
  }
  // Everything the child needs is built before it starts: it runs in this
  // process's memory until it execs and may not allocate (spawn.h).
  std::vector<std::string> env;
  env.reserve(config_.env.size() + 1);
  const size_t prefix_len = sizeof(kWorkerIdEnv) - 1;
  for (const auto& e : config_.env) {
    if (e.compare(0, prefix_len, kWorkerIdEnv) != 0) env.push_back(e);
  }
  env.push_back(std::string(kWorkerIdEnv) + id.Hex());
  std::vector<char*> argv_p;
  for (const auto& a : config_.argv) argv_p.push_back(const_cast<char*>(a.c_str()));
  argv_p.push_back(nullptr);
  std::vector<char*> env_p;
  for (const auto& e : env) env_p.push_back(const_cast<char*>(e.c_str()));
  env_p.push_back(nullptr);

  // Output pipes: [0] read end (ours), [1] write end (the child's fd 1 / 2).
  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {out_p[0], out_p[1], err_p[0], err_p[1]})
      if (fd >= 0) close(fd);
  };
  if (config_.on_output && (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)) {
    int e = errno;
    close_all();
    return Status::IOError(std::string("worker launcher: pipe2 for output: ") + strerror(e));
  }
  SpawnSpec spec{argv_p[0], argv_p.data(), env_p.data(),
                 config_.working_dir.empty() ? nullptr : config_.working_dir.c_str(), out_p[1], err_p[1]};
  StatusOr<int> pid = Spawn(spec);
  if (out_p[1] >= 0) close(out_p[1]);
  if (err_p[1] >= 0) close(err_p[1]);
  if (!pid.ok()) {
    if (out_p[0] >= 0) close(out_p[0]);
    if (err_p[0] >= 0) close(err_p[0]);
    return Status::IOError("worker launcher: " + pid.status().message());
  }
  running_.insert(*pid);
  if (config_.on_output) config_.on_output(id, *pid, out_p[0], err_p[0]);
  return *pid;
}

void ProcessWorkerLauncher::Kill(int pid) {
  if (running_.count(pid) != 0) kill(pid, SIGKILL);
}

Status ProcessWorkerLauncher::Reap(std::vector<std::pair<int, int>>* exited) {
  std::vector<int> lost;
  std::vector<int> pids(running_.begin(), running_.end());
  for (int pid : pids) {
    int st = 0;
    pid_t r;
    do {
      r = waitpid(pid, &st, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) continue;  // still running
    running_.erase(pid);
    if (r < 0) {
      lost.push_back(pid);
      continue;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : 0;
    exited->emplace_back(pid, code);
  }
  if (!lost.empty()) {
    std::string msg = "worker launcher: children reaped elsewhere:";
    for (int pid : lost) msg += " " + std::to_string(pid);
    return Status::Internal(msg);
  }
  return Status::OK();
}

// ---- WorkerPool -------------------------------------------------------------

WorkerPool::WorkerPool(WorkerLauncher* launcher, int max_workers, StartPolicy policy, Clock now)
    : launcher_(launcher),
      max_workers_(max_workers),
      policy_(policy),
      now_(now ? std::move(now) : Clock([] { return std::chrono::steady_clock::now(); })) {
  RAYTS_CHECK(launcher_ != nullptr);
  RAYTS_CHECK(max_workers_ > 0);
  RAYTS_CHECK(policy_.start_attempts > 0);
}

Status WorkerPool::StartWorker() {
  WorkerID id = WorkerID::FromRandom();
  StatusOr<int> pid = launcher_->Launch(id);
  if (!pid.ok()) return pid.status();
  workers_[id] = Worker{*pid, State::kStarting, false};
  num_starting_++;
  return Status::OK();
}

void WorkerPool::Prestart(int n) {
  for (int i = 0; i < n && NumCounted() < max_workers_; i++) {
    if (!StartWorker().ok()) return;
  }
}

void WorkerPool::MaybeStartWorkers() {
  std::vector<std::pair<PopCallback, Status>> failed;
  if (start_failures_ > 0 && now_() < next_start_at_) return;  // backing off: Tick starts them
  while (waiters_.size() > static_cast<size_t>(num_starting_) && NumCounted() < max_workers_) {
    Status s = StartWorker();
    if (!s.ok()) {
      // No starting worker will reach the newest waiter: it gets the error.
      failed.emplace_back(std::move(waiters_.back()), s);
      waiters_.pop_back();
    }
  }
  // Callbacks run after the pool is consistent; they may re-enter.
  for (auto& [cb, s] : failed) cb(s);
}

void WorkerPool::PopWorker(PopCallback cb) {
  if (!idle_.empty()) {
    WorkerID id = idle_.back();
    idle_.pop_back();
    workers_.at(id).state = State::kLeased;
    cb(id);
    return;
  }
  waiters_.push_back(std::move(cb));
  MaybeStartWorkers();
}

void WorkerPool::Assign(const WorkerID& id, Worker& w) {
  if (waiters_.empty()) {
    w.state = State::kIdle;
    w.idle_since = std::chrono::steady_clock::now();
    idle_.push_back(id);
    return;
  }
  w.state = State::kLeased;
  PopCallback cb = std::move(waiters_.front());
  waiters_.pop_front();
  cb(id);
}

Status WorkerPool::OnWorkerRegistered(const WorkerID& id, int pid) {
  auto it = workers_.find(id);
  if (it == workers_.end()) {
    return Status::InvalidArgument("worker " + id.Hex() + " was not started by this raylet");
  }
  Worker& w = it->second;
  if (w.state != State::kStarting) {
    return Status::InvalidArgument("worker " + id.Hex() + " is already registered");
  }
  if (w.pid != pid) {
    return Status::InvalidArgument("worker " + id.Hex() + " registered with pid " +
                                   std::to_string(pid) + " but was started as pid " +
                                   std::to_string(w.pid));
  }
  num_starting_--;
  start_failures_ = 0;  // this shape of worker can start
  Assign(id, w);
  return Status::OK();
}

void WorkerPool::PushIdleWorker(const WorkerID& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;  // died meanwhile
  Worker& w = it->second;
  RAYTS_CHECK(w.state == State::kLeased);  // a worker is pushed back once per pop
  if (w.blocked) {
    w.blocked = false;
    num_blocked_--;
  }
  Assign(id, w);
}

void WorkerPool::RemoveIdle(const WorkerID& id) {
  auto it = std::find(idle_.begin(), idle_.end(), id);
  if (it != idle_.end()) idle_.erase(it);
}

void WorkerPool::Forget(std::unordered_map<WorkerID, Worker, IdHash>::iterator it) {
  const WorkerID id = it->first;
  const Worker w = it->second;
  workers_.erase(it);
  if (w.state == State::kStarting) num_starting_--;
  if (w.state == State::kIdle) RemoveIdle(id);
  if (w.blocked) num_blocked_--;
  launcher_->Kill(w.pid);
}

void WorkerPool::OnWorkerDied(const WorkerID& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  Forget(it);
  MaybeStartWorkers();
}

void WorkerPool::OnWorkerStartFailed(const WorkerID& id, const std::string& cause) {
  auto it = workers_.find(id);
  if (it == workers_.end() || it->second.state != State::kStarting) return;
  Forget(it);
  const auto now = now_();
  if (start_failures_ > 0 && now - last_start_failure_ >= policy_.start_failures_forgotten) start_failures_ = 0;
  start_failures_++;
  last_start_failure_ = now;
  if (start_failures_ < policy_.start_attempts) {
    // 100 ms, 200 ms, 400 ms, ... (capped so the shift cannot overflow).
    next_start_at_ = now + policy_.start_backoff * (int64_t{1} << std::min(start_failures_ - 1, 20));
    MaybeStartWorkers();  // starts nothing before next_start_at_
    return;
  }
  // Given up: nothing this pool starts can serve the waiters now. A later
  // PopWorker starts over.
  const Status s = Status::Unavailable("worker processes for this task could not start (" +
                                       std::to_string(start_failures_) + " attempts): " + cause);
  start_failures_ = 0;
  std::deque<PopCallback> waiters;
  waiters.swap(waiters_);
  for (auto& cb : waiters) cb(s);  // the pool is consistent; callbacks may re-enter
}

void WorkerPool::Tick() { MaybeStartWorkers(); }

std::optional<WorkerID> WorkerPool::WorkerOfPid(int pid) const {
  for (const auto& [id, w] : workers_) {
    if (w.pid == pid) return id;
  }
  return std::nullopt;
}

void WorkerPool::SetWorkerBlocked(const WorkerID& id, bool blocked) {
  auto it = workers_.find(id);
  if (it == workers_.end() || it->second.state != State::kLeased) return;
  Worker& w = it->second;
  if (w.blocked == blocked) return;
  w.blocked = blocked;
  num_blocked_ += blocked ? 1 : -1;
  if (blocked) MaybeStartWorkers();
}

std::vector<WorkerID> WorkerPool::IdleWorkersToEnd(std::chrono::steady_clock::time_point now, int soft_limit,
                                                   std::chrono::milliseconds after) const {
  std::vector<WorkerID> out;
  int above = static_cast<int>(workers_.size()) - std::max(0, soft_limit);
  // idle_ is in order of becoming idle: front = idle longest.
  for (const WorkerID& id : idle_) {
    if (above <= 0) break;
    const Worker& w = workers_.at(id);
    if (now - w.idle_since < after) break;  // the rest became idle later
    out.push_back(id);
    above--;
  }
  return out;
}

void WorkerPool::KillAll() {
  for (const auto& [id, w] : workers_) launcher_->Kill(w.pid);
  workers_.clear();
  idle_.clear();
  num_starting_ = 0;
  num_blocked_ = 0;
  std::deque<PopCallback> waiters;
  waiters.swap(waiters_);
  for (auto& cb : waiters) cb(Status::Cancelled("worker pool is shutting down"));
}

std::vector<WorkerID> WorkerPool::AllWorkers() const {
  std::vector<WorkerID> out;
  out.reserve(workers_.size());
  for (const auto& [id, w] : workers_) out.push_back(id);
  return out;
}

std::optional<int> WorkerPool::PidOf(const WorkerID& id) const {
  auto it = workers_.find(id);
  if (it == workers_.end()) return std::nullopt;
  return it->second.pid;
}

}  // namespace rayts::raylet
