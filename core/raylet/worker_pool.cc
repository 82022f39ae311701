#include "core/raylet/worker_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

namespace rayts::raylet {

// ---- ProcessWorkerLauncher ------------------------------------------------

namespace {

constexpr char kWorkerIdEnv[] = "RAYTS_WORKER_ID=";

// What the child reports through the error pipe before it gives up.
struct ChildError {
  int stage;  // 0: chdir, 1: execve
  int err;    // errno
};

// Async-signal-safe: closes every fd in [lo, hi] (hi inclusive).
void CloseRange(unsigned lo, unsigned hi) {
  if (lo > hi) return;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, lo, hi, 0) == 0) return;
#endif
  struct rlimit rl;
  unsigned limit = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    limit = static_cast<unsigned>(rl.rlim_cur);
  }
  for (unsigned fd = lo; fd <= hi && fd < limit; fd++) close(static_cast<int>(fd));
}

// Runs in the forked child; only async-signal-safe calls. Never returns.
[[noreturn]] void RunChild(pid_t parent, int err_fd, const char* path, char* const argv[],
                           char* const envp[], const char* cwd, int out_w, int err_w) {
  // Die with the parent; if it is already gone, getppid() changed.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);

  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, nullptr);  // fails harmlessly for KILL/STOP

  ChildError ce{0, 0};
  if (cwd != nullptr && chdir(cwd) != 0) {
    ce = {0, errno};
  } else {
    // Captured output: stdout and stderr become the pipes (dup2 clears
    // close-on-exec on the copies; the originals are closed below).
    if (out_w >= 0) dup2(out_w, 1);
    if (err_w >= 0) dup2(err_w, 2);
    // Otherwise workers share the raylet's stdout/stderr; the host may have
    // marked them close-on-exec.
    for (int fd = 0; fd <= 2; fd++) {
      int flags = fcntl(fd, F_GETFD);
      if (flags >= 0 && (flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    unsigned efd = static_cast<unsigned>(err_fd);
    if (efd > 3) CloseRange(3, efd - 1);
    CloseRange(efd + 1, ~0u);
    execve(path, argv, envp);
    ce = {1, errno};
  }
  ssize_t n;
  do {
    n = write(err_fd, &ce, sizeof ce);
  } while (n < 0 && errno == EINTR);
  _exit(127);
}

}  // namespace

ProcessWorkerLauncher::ProcessWorkerLauncher(Config config) : config_(std::move(config)) {}

StatusOr<int> ProcessWorkerLauncher::Launch(const WorkerID& id) {
  if (config_.argv.empty()) {
    return Status::InvalidArgument("worker launcher: argv is empty");
  }
  // Everything the child needs is built before fork: the child may only make
  // async-signal-safe calls (no allocation).
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
  const char* cwd = config_.working_dir.empty() ? nullptr : config_.working_dir.c_str();

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Status::IOError(std::string("worker launcher: pipe2: ") + strerror(errno));
  }
  // Output pipes: [0] read end (ours), [1] write end (the child's fd 1 / 2).
  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {pipe_fds[0], pipe_fds[1], out_p[0], out_p[1], err_p[0], err_p[1]})
      if (fd >= 0) close(fd);
  };
  if (config_.on_output && (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)) {
    int e = errno;
    close_all();
    return Status::IOError(std::string("worker launcher: pipe2 for output: ") + strerror(e));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close_all();
    return Status::IOError(std::string("worker launcher: fork: ") + strerror(e));
  }
  if (pid == 0) {
    close(pipe_fds[0]);
    RunChild(parent, pipe_fds[1], argv_p[0], argv_p.data(), env_p.data(), cwd, out_p[1], err_p[1]);
  }
  close(pipe_fds[1]);
  if (out_p[1] >= 0) close(out_p[1]);
  if (err_p[1] >= 0) close(err_p[1]);
  ChildError ce{};
  ssize_t n;
  do {
    n = read(pipe_fds[0], &ce, sizeof ce);
  } while (n < 0 && errno == EINTR);
  close(pipe_fds[0]);
  if (n == 0) {  // EOF: the pipe closed on a successful exec
    running_.insert(pid);
    if (config_.on_output) config_.on_output(id, static_cast<int>(pid), out_p[0], err_p[0]);
    return static_cast<int>(pid);
  }
  if (out_p[0] >= 0) close(out_p[0]);
  if (err_p[0] >= 0) close(err_p[0]);
  // The child failed before or at exec and is exiting: reap it now.
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof ce)) {
    return Status::IOError("worker launcher: child of '" + config_.argv[0] +
                           "' failed before exec");
  }
  if (ce.stage == 0) {
    return Status::IOError("worker launcher: chdir '" + config_.working_dir +
                           "': " + strerror(ce.err));
  }
  return Status::IOError("worker launcher: execve '" + config_.argv[0] + "': " + strerror(ce.err));
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

WorkerPool::WorkerPool(WorkerLauncher* launcher, int max_workers)
    : launcher_(launcher), max_workers_(max_workers) {
  RAYTS_CHECK(launcher_ != nullptr);
  RAYTS_CHECK(max_workers_ > 0);
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

void WorkerPool::OnWorkerDied(const WorkerID& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  const Worker w = it->second;
  workers_.erase(it);
  if (w.state == State::kStarting) num_starting_--;
  if (w.state == State::kIdle) RemoveIdle(id);
  if (w.blocked) num_blocked_--;
  launcher_->Kill(w.pid);
  MaybeStartWorkers();
}

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
