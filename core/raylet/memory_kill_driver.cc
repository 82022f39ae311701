#include "core/raylet/memory_kill_driver.h"

#include <algorithm>

namespace rayts::raylet {

MemoryKillDriver::MemoryKillDriver(asio::io_context& io, Options opts, Hooks hooks)
    : io_(io), opts_(opts), hooks_(std::move(hooks)), timer_(io) {}

void MemoryKillDriver::Start() {
  stopped_ = false;
  Schedule();
}

void MemoryKillDriver::Stop() {
  stopped_ = true;
  timer_.cancel();
  for (auto& t : graces_) t->cancel();
  graces_.clear();
}

void MemoryKillDriver::Schedule() {
  if (opts_.period_ms <= 0 || stopped_) return;
  timer_.expires_after(std::chrono::milliseconds(opts_.period_ms));
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    (void)CheckOnce();
    Schedule();
  });
}

std::optional<KillCandidate> MemoryKillDriver::CheckOnce() {
  // One kill at a time: wait until the previous victim is gone.
  if (victim_ && hooks_.alive(victim_->worker, victim_->pid)) return std::nullopt;
  victim_.reset();
  auto snap = hooks_.read_memory();
  if (!snap.ok() || !AboveThreshold(*snap, opts_.threshold)) return std::nullopt;
  std::vector<KillCandidate> candidates = hooks_.candidates();
  auto pick = SelectWorkerToKill(candidates);
  if (!pick) return std::nullopt;
  KillCandidate victim = candidates[*pick];
  victim.rss_bytes = hooks_.rss(victim.pid);
  Kill(victim, OomKillMessage(*snap, opts_.threshold, victim));
  return victim;
}

void MemoryKillDriver::Kill(const KillCandidate& victim, const std::string& reason) {
  victim_ = victim;
  kills_++;
  // The worker relays the reason to the processes pushing tasks to it on
  // the same connections that then close, so an owner always learns the
  // cause before it sees the worker gone.
  if (!hooks_.ask_to_exit(victim.worker, reason)) {
    hooks_.kill(victim.pid);
    return;
  }
  graces_.erase(std::remove_if(graces_.begin(), graces_.end(),
                               [](const std::shared_ptr<asio::steady_timer>& t) {
                                 return t->expiry() <= asio::steady_timer::clock_type::now();
                               }),
                graces_.end());
  auto timer = std::make_shared<asio::steady_timer>(io_);
  graces_.push_back(timer);
  timer->expires_after(opts_.grace);
  WorkerID worker = victim.worker;
  int pid = victim.pid;
  timer->async_wait([this, worker, pid](const asio::error_code& ec) {
    if (ec || stopped_) return;
    if (hooks_.alive(worker, pid)) hooks_.kill(pid);  // still there after the grace
  });
}

}  // namespace rayts::raylet
