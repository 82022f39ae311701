#include "core/core_worker/actor_scheduling_queue.h"

#include <string>

namespace rayts {

ActorSchedulingQueue::ActorSchedulingQueue(int max_concurrency, uint64_t next_expected)
    : ordered_(max_concurrency <= 1), next_(next_expected), max_epoch_start_seen_(next_expected) {}

void ActorSchedulingQueue::Add(uint64_t seq, uint64_t handle) {
  if (seq < next_) {
    stale_.push_back(handle);
    return;
  }
  if (!ordered_) {
    arrivals_.push_back({seq, handle});
    return;
  }
  if (!by_seq_.emplace(seq, handle).second) stale_.push_back(handle);  // duplicate seq
}

std::vector<uint64_t> ActorSchedulingQueue::TakeRunnable() {
  std::vector<uint64_t> out;
  if (!ordered_) {
    out.reserve(arrivals_.size());
    for (const Arrival& a : arrivals_) out.push_back(a.handle);
    arrivals_.clear();
    return out;
  }
  auto it = by_seq_.begin();
  while (it != by_seq_.end() && it->first == next_) {
    out.push_back(it->second);
    ++next_;
    it = by_seq_.erase(it);
  }
  return out;
}

void ActorSchedulingQueue::SetNextExpected(uint64_t seq) {
  next_ = seq;
  if (ordered_) {
    auto end = by_seq_.lower_bound(seq);
    for (auto it = by_seq_.begin(); it != end; ++it) stale_.push_back(it->second);
    by_seq_.erase(by_seq_.begin(), end);
    return;
  }
  std::vector<Arrival> keep;
  keep.reserve(arrivals_.size());
  for (const Arrival& a : arrivals_) {
    if (a.seq < seq) stale_.push_back(a.handle);
    else keep.push_back(a);
  }
  arrivals_.swap(keep);
}

void ActorSchedulingQueue::ObserveEpochStart(uint64_t epoch_start) {
  if (epoch_start <= max_epoch_start_seen_) return;
  max_epoch_start_seen_ = epoch_start;
  SetNextExpected(epoch_start);
}

std::vector<uint64_t> ActorSchedulingQueue::TakeStale() {
  std::vector<uint64_t> out;
  out.swap(stale_);
  return out;
}

bool ActorSchedulingQueue::HasGap() const {
  return ordered_ && !by_seq_.empty() && by_seq_.begin()->first != next_;
}

std::vector<uint64_t> ActorSchedulingQueue::OnGapTimeout() {
  if (!HasGap()) return {};
  uint64_t first = by_seq_.begin()->first;
  last_gap_reason_ = "calls " + std::to_string(next_) +
                     (first - next_ == 1 ? std::string() : ".." + std::to_string(first - 1)) +
                     " from this caller never arrived within the reorder wait; the caller most "
                     "likely died between sends. Running call " + std::to_string(first) +
                     " and the ones after it without them.";
  next_ = first;
  return TakeRunnable();
}

}  // namespace rayts
