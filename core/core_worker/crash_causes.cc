#include "core/core_worker/crash_causes.h"

#include <csignal>

#include <algorithm>

#include "core/common/error_record.h"
#include "core/common/json.h"
#include "core/core_worker/wire.h"

namespace rayts {

namespace {
// "SIGKILL" for 9 (sigabbrev_np needs glibc 2.32; the prebuilt addon targets 2.31).
std::string SignalName(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGSYS: return "SIGSYS";
    default: return "signal " + std::to_string(sig);
  }
}
}  // namespace

std::string WorkerExitCause::How() const {
  if (exit_code >= 0) return "exited with code " + std::to_string(exit_code);
  if (signal > 0) return "was killed by signal " + std::to_string(signal) + " (" + SignalName(signal) + ")";
  return "died";
}

void CrashCauses::OnWorkerDiedLocked(const proto::WorkerDied& d) {
  if (!d.worker_id() || d.worker_id()->size() != WorkerID::kSize) return;
  WorkerID id = WorkerID::FromBytes(d.worker_id()->data());
  WorkerExitCause c;
  c.pid = d.pid();
  c.exit_code = d.exit_code();
  c.signal = d.signal();
  c.stderr_tail = wire::Str(d.stderr_tail());
  if (waiting_.count(id)) {
    RunLocked(id, c);
    return;
  }
  // The connection to the worker has not closed yet here: keep it for then.
  if (known_.emplace(id, std::move(c)).second) {
    known_order_.push_back(id);
    if (known_order_.size() > kKeptCauses) {
      known_.erase(known_order_.front());
      known_order_.pop_front();
    }
  }
}

void CrashCauses::AwaitLocked(const WorkerID& id, Then then, const std::string& node) {
  auto k = known_.find(id);
  if (k != known_.end()) {
    WorkerExitCause c = std::move(k->second);
    known_.erase(k);
    known_order_.erase(std::remove(known_order_.begin(), known_order_.end(), id), known_order_.end());
    then(c);
    return;
  }
  Waiting& w = waiting_[id];
  w.then.push_back(std::move(then));
  if (w.timer) return;
  w.node = node;
  w.timer = transport_.NewTimer();
  w.timer->Arm(node.empty() ? kWait : kRemoteWait, [this, id] {
    ctx_.AssertHeld();
    RunLocked(id, std::nullopt);
  });
}

void CrashCauses::OnNodeDeadLocked(const std::string& node) {
  std::vector<WorkerID> ended;
  for (auto& [id, w] : waiting_)
    if (!node.empty() && w.node == node) ended.push_back(id);
  for (auto& id : ended) RunLocked(id, std::nullopt);
}

void CrashCauses::RunLocked(const WorkerID& id, const std::optional<WorkerExitCause>& cause) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;
  Waiting w = std::move(it->second);
  waiting_.erase(it);
  if (w.timer) w.timer->Cancel();
  if (ctx_.shutting_down) return;
  for (auto& then : w.then) then(cause);
}

std::string WorkerCrashedJson(const std::string& task_name, const std::optional<WorkerExitCause>& cause,
                              const std::string& fallback) {
  std::string msg = "the worker running task " + task_name;
  if (cause) msg += " (pid " + std::to_string(cause->pid) + ") " + cause->How();
  else msg += " " + fallback;
  msg += "; retries exhausted";
  if (cause && !cause->stderr_tail.empty()) {
    msg += "\nits last stderr lines:";
    size_t from = 0;
    const std::string& t = cause->stderr_tail;
    while (from <= t.size()) {
      size_t nl = t.find('\n', from);
      msg += "\n  " + t.substr(from, nl == std::string::npos ? std::string::npos : nl - from);
      if (nl == std::string::npos) break;
      from = nl + 1;
    }
  }
  std::string out = ErrorRecordJson(ErrorKind::kWorkerCrashed, "WorkerCrashedError", msg);
  if (!cause) return out;
  out.pop_back();  // the closing brace: the crash fields follow
  if (cause->exit_code >= 0) out += ",\"exitCode\":" + std::to_string(cause->exit_code);
  if (cause->signal > 0) {
    out += ",\"signal\":";
    JsonEscapeTo(&out, SignalName(cause->signal));
  }
  out += ",\"pid\":" + std::to_string(cause->pid) + ",\"stderr\":";
  JsonEscapeTo(&out, cause->stderr_tail);
  out += "}";
  return out;
}

}  // namespace rayts
