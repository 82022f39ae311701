#include "core/core_worker/actor_call_queue.h"

namespace rayts {

ActorCallQueue::ActorCallQueue(std::string actor, size_t max_pending)
    : actor_(std::move(actor)), max_pending_(max_pending) {}

Status ActorCallQueue::CanEnqueue() const {
  if (max_pending_ != 0 && pending_.size() >= max_pending_) {
    return Status::Unavailable("actor " + actor_ + " has " + std::to_string(pending_.size()) +
                               " pending calls, the limit set by maxPendingCalls (" +
                               std::to_string(max_pending_) +
                               "); wait for some to finish or raise maxPendingCalls");
  }
  return Status::OK();
}

uint64_t ActorCallQueue::Enqueue(TaskID task, int max_retries, bool ready) {
  uint64_t seq = next_seq_++;
  if (state_ == State::kDead) {
    Fail(task, "actor " + actor_ + " is dead" +
                   (death_cause_.empty() ? std::string() : ": " + death_cause_) +
                   "; the call was not sent");
    // Keep the unsent-prefix invariant trivially true: nothing is pending.
    next_unsent_ = next_seq_;
    return seq;
  }
  Entry e;
  e.task = task;
  e.max_retries = max_retries;
  e.ready = ready;
  pending_.emplace_hint(pending_.end(), seq, std::move(e));
  return seq;
}

std::vector<ActorCallQueue::Call> ActorCallQueue::TakeSendable() {
  std::vector<Call> out;
  if (state_ != State::kConnected) return out;
  auto it = pending_.lower_bound(next_unsent_);
  for (; it != pending_.end(); ++it) {
    Entry& e = it->second;
    RAYTS_CHECK(!e.sent);
    if (!e.ready) break;  // later calls wait: the wire keeps submission order
    e.sent = true;
    in_flight_++;
    Call c;
    c.task = e.task;
    c.seq = it->first;
    c.attempt = e.attempt;
    c.epoch = epoch_;
    c.send_seq = next_send_seq_++;
    c.epoch_start = epoch_start_;
    out.push_back(c);
  }
  next_unsent_ = it == pending_.end() ? next_seq_ : it->first;
  return out;
}

bool ActorCallQueue::MarkReady(uint64_t seq) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return false;
  it->second.ready = true;
  return true;
}

void ActorCallQueue::OnConnected(uint64_t epoch) {
  if (state_ == State::kDead) return;
  for (auto it = pending_.begin(); it != pending_.end();) {
    Entry& e = it->second;
    if (!e.sent) break;  // sent calls are a prefix in seq order
    e.sent = false;
    in_flight_--;
    if (e.max_retries < 0 || e.attempt < e.max_retries) {
      e.attempt++;
      ++it;
      continue;
    }
    Fail(e.task, "actor " + actor_ + " restarted (epoch " + std::to_string(epoch) +
                     ") while call seq " + std::to_string(it->first) +
                     " was in flight, and the call has no retries left (maxTaskRetries=" +
                     std::to_string(e.max_retries) + ", sent " + std::to_string(e.attempt + 1) +
                     (e.attempt == 0 ? " time)" : " times)"));
    it = pending_.erase(it);
  }
  RAYTS_CHECK(in_flight_ == 0);
  next_unsent_ = pending_.empty() ? next_seq_ : pending_.begin()->first;
  state_ = State::kConnected;
  epoch_ = epoch;
  epoch_start_ = next_send_seq_;
}

void ActorCallQueue::OnDisconnected(bool restarting, const std::string& cause) {
  if (state_ == State::kDead) return;
  if (restarting) {
    // In-flight calls with retries left stay marked sent (OnConnected resends
    // them); the others fail now.
    state_ = State::kRestarting;
    for (auto it = pending_.begin(); it != pending_.end();) {
      Entry& e = it->second;
      if (!e.sent) break;  // sent calls are a prefix in seq order
      if (e.max_retries < 0 || e.attempt < e.max_retries) {
        ++it;
        continue;
      }
      Fail(e.task, "actor " + actor_ + " lost its worker while call seq " + std::to_string(it->first) +
                       " was in flight" + (cause.empty() ? std::string() : " (" + cause + ")") +
                       ", and the call has no retries left (maxTaskRetries=" + std::to_string(e.max_retries) +
                       ", sent " + std::to_string(e.attempt + 1) + (e.attempt == 0 ? " time)" : " times)"));
      in_flight_--;
      it = pending_.erase(it);
    }
    return;
  }
  state_ = State::kDead;
  death_cause_ = cause;
  std::string reason =
      "actor " + actor_ + " died" + (cause.empty() ? std::string() : ": " + cause);
  for (auto& [seq, e] : pending_) Fail(e.task, reason);
  pending_.clear();
  in_flight_ = 0;
  next_unsent_ = next_seq_;
}

bool ActorCallQueue::OnReplied(uint64_t seq) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return false;
  if (it->second.sent) in_flight_--;
  pending_.erase(it);
  return true;
}

std::vector<std::pair<TaskID, std::string>> ActorCallQueue::TakeFailed() {
  std::vector<std::pair<TaskID, std::string>> out;
  out.swap(failed_);
  return out;
}

void ActorCallQueue::Fail(const TaskID& task, std::string reason) {
  failed_.emplace_back(task, std::move(reason));
}

}  // namespace rayts
