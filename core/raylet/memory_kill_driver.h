// MemoryKillDriver: the node's memory monitor loop: sample the node's memory
// every period and, past the threshold, end one leased worker.
//
// Role: the acting half of the memory monitor (memory_monitor.h holds the
// pure policy and the readers). One kill at a time, as Ray does: while the
// previous victim is still registered nothing else is killed (its memory is
// only freed when it is gone). A victim is first asked to exit (its owner
// learns why through it) and SIGKILLed if it is still there after a grace.
// Everything it needs from the node (the leased workers, whether one is
// still alive, how to reach or kill it) comes through Hooks, so a test
// drives it with fakes and no processes.
// Ownership: owns its timers; borrows the io_context, which must outlive it.
// Thread safety: none; every method and hook runs on the io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/common/asio.h"

#include "core/raylet/memory_monitor.h"

namespace rayts::raylet {

class MemoryKillDriver {
 public:
  struct Hooks {
    std::function<StatusOr<MemorySnapshot>()> read_memory;  // ReadNodeMemory
    std::function<std::vector<KillCandidate>()> candidates;  // leased workers, with pids
    std::function<uint64_t(int pid)> rss;                    // ReadProcessRss
    std::function<bool(const WorkerID& worker, int pid)> alive;  // still registered with that pid
    // Ask the worker to exit (KillWorker on its control connection, with
    // the reason for its owner); false when it has no control connection.
    std::function<bool(const WorkerID& worker, const std::string& reason)> ask_to_exit;
    std::function<void(int pid)> kill;  // SIGKILL
  };
  struct Options {
    double threshold = 0.95;      // fraction of the node's memory, (0, 1]
    int period_ms = 250;          // 0: the monitor is off
    std::chrono::milliseconds grace{1000};  // between asking and SIGKILL
  };

  MemoryKillDriver(asio::io_context& io, Options opts, Hooks hooks);

  void Start();  // samples every period_ms (no-op when it is 0)
  void Stop();   // cancels the sampling and pending SIGKILLs

  // One sample: the victim it acted on, if any.
  std::optional<KillCandidate> CheckOnce();
  uint64_t kills() const { return kills_; }
  double threshold() const { return opts_.threshold; }

 private:
  void Schedule();
  void Kill(const KillCandidate& victim, const std::string& reason);

  asio::io_context& io_;
  Options opts_;
  Hooks hooks_;
  asio::steady_timer timer_;
  std::vector<std::shared_ptr<asio::steady_timer>> graces_;
  std::optional<KillCandidate> victim_;  // killed, maybe not gone yet
  uint64_t kills_ = 0;
  bool stopped_ = false;
};

}  // namespace rayts::raylet
