#include "core/raylet/object_pull.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace rayts::raylet {

PullManager::PullManager(Options opts, Hooks hooks) : opts_(opts), hooks_(std::move(hooks)) {
  if (opts_.chunk_bytes == 0) opts_.chunk_bytes = 1;
  opts_.max_bytes_in_flight = std::max(opts_.max_bytes_in_flight, opts_.chunk_bytes);
}

bool PullManager::WithinBound(uint64_t size) const {
  return pulls_.empty() || opts_.max_bytes_pulling == 0 || pulling_ + size <= opts_.max_bytes_pulling;
}

PullManager::Outcome PullManager::Pull(const ObjectID& id, std::vector<NodeID> sources, uint64_t size,
                                       PullPriority priority, std::chrono::milliseconds bound, Done done) {
  if (auto it = pulls_.find(id); it != pulls_.end()) {
    stats_.merged++;
    it->second.waiters.push_back(std::move(done));
    return Outcome::kJoined;
  }
  if (auto q = queued_.find(id); q != queued_.end()) {
    stats_.merged++;
    Enqueue(id, std::move(sources), size, priority, bound, q->second.why, std::move(done));
    return Outcome::kJoined;
  }
  if (sources.empty()) {
    stats_.failed++;
    done(Status::ObjectLost("object " + id.Hex() + " has no node to be pulled from"));
    return Outcome::kFailed;
  }
  if (opts_.store_bytes != 0 && size > opts_.store_bytes) {
    stats_.failed++;
    done(Status::OutOfMemory("object " + id.Hex() + " (" + std::to_string(size) +
                             " bytes) is bigger than the whole object store of this node (" +
                             std::to_string(opts_.store_bytes) + " bytes): it cannot be pulled here"));
    return Outcome::kFailed;
  }
  // Queued pulls of this priority or a higher one go first.
  const bool ahead = !queue_.empty() && queue_.begin()->first.first <= static_cast<uint8_t>(priority);
  if (ahead || !WithinBound(size)) {
    Enqueue(id, std::move(sources), size, priority, bound,
            Status::OutOfMemory("other pulls are ahead of it or under way"), std::move(done));
    return Outcome::kQueued;
  }
  auto buf = hooks_.create(id, size);
  if (!buf.ok()) {
    if (buf.status().code() == StatusCode::kOutOfMemory) {
      Enqueue(id, std::move(sources), size, priority, bound, buf.status(), std::move(done));
      return Outcome::kQueued;
    }
    stats_.failed++;
    done(buf.status());
    return Outcome::kFailed;
  }
  std::vector<Done> waiters;
  waiters.push_back(std::move(done));
  Start(id, std::move(sources), size, *buf, std::move(waiters));
  Settle();
  return Outcome::kStarted;
}

void PullManager::Enqueue(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, PullPriority priority,
                          std::chrono::milliseconds bound, Status why, Done done) {
  auto [it, fresh] = queued_.try_emplace(id);
  QueuedPull& q = it->second;
  if (fresh) {
    stats_.queued++;
    q.sources = std::move(sources);
    q.size = size;
    q.priority = priority;
    q.seq = next_seq_++;
    q.why = std::move(why);
    queue_.emplace(QueueKey{static_cast<uint8_t>(priority), q.seq}, id);
  } else if (static_cast<uint8_t>(priority) < static_cast<uint8_t>(q.priority)) {
    queue_.erase(QueueKey{static_cast<uint8_t>(q.priority), q.seq});  // a get joins a queued argument pull
    q.priority = priority;
    queue_.emplace(QueueKey{static_cast<uint8_t>(priority), q.seq}, id);
  }
  const uint64_t ticket = next_ticket_++;
  q.waiters.push_back(Waiter{ticket, std::move(done)});
  std::weak_ptr<char> alive = alive_;
  hooks_.after(bound, [this, alive, id, ticket, bound] {
    if (alive.lock()) Expire(id, ticket, bound);
  });
}

void PullManager::Expire(const ObjectID& id, uint64_t ticket, std::chrono::milliseconds bound) {
  auto it = queued_.find(id);
  if (it == queued_.end()) return;  // admitted (or failed) already
  QueuedPull& q = it->second;
  auto w = std::find_if(q.waiters.begin(), q.waiters.end(), [&](const Waiter& x) { return x.ticket == ticket; });
  if (w == q.waiters.end()) return;
  Done done = std::move(w->done);
  q.waiters.erase(w);
  Status why = Status::OutOfMemory("object " + id.Hex() + " (" + std::to_string(q.size) + " bytes) waited " +
                                   std::to_string(bound.count()) +
                                   " ms for room in the object store of this node to be pulled into, and found none (" +
                                   q.why.message() + ")");
  if (q.waiters.empty()) {
    stats_.failed++;
    queue_.erase(QueueKey{static_cast<uint8_t>(q.priority), q.seq});
    queued_.erase(it);
  }
  done(why);
  Settle();  // the pulls it held back may fit
}

void PullManager::Start(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, uint8_t* buf,
                        std::vector<Done> waiters) {
  stats_.started++;
  Pull_& p = pulls_[id];
  p.sources = std::move(sources);
  p.size = size;
  p.buf = buf;
  p.waiters = std::move(waiters);
  pulling_ += size;
  if (size == 0) {
    Finish(id, Status::OK());
    return;
  }
  order_.push_back(id);
}

void PullManager::OnRoom() { Settle(); }

void PullManager::Settle() {
  if (settling_) {  // a Done callback called back in: the outer loop goes on
    settle_again_ = true;
    return;
  }
  settling_ = true;
  do {
    settle_again_ = false;
    Admit();
    Pump();
  } while (settle_again_);
  settling_ = false;
}

void PullManager::Admit() {
  while (!queue_.empty()) {
    const ObjectID id = queue_.begin()->second;
    QueuedPull& q = queued_.at(id);
    if (!WithinBound(q.size)) return;
    auto buf = hooks_.create(id, q.size);
    if (!buf.ok() && buf.status().code() == StatusCode::kOutOfMemory) {
      q.why = buf.status();
      return;  // strict order: the pulls behind it wait too
    }
    QueuedPull taken = std::move(q);
    queue_.erase(queue_.begin());
    queued_.erase(id);
    std::vector<Done> waiters;
    for (auto& w : taken.waiters) waiters.push_back(std::move(w.done));
    if (!buf.ok()) {
      stats_.failed++;
      for (auto& w : waiters) w(buf.status());
      continue;
    }
    Start(id, std::move(taken.sources), taken.size, *buf, std::move(waiters));
  }
}

void PullManager::Pump() {
  while (!order_.empty()) {
    ObjectID id = order_.front();
    auto it = pulls_.find(id);
    if (it == pulls_.end() || (it->second.redo.empty() && it->second.next_offset >= it->second.size)) {
      order_.pop_front();
      continue;
    }
    Pull_& p = it->second;
    const bool redo = !p.redo.empty();
    const uint64_t off = redo ? p.redo.front().first : p.next_offset;
    const uint64_t len = redo ? p.redo.front().second : std::min(opts_.chunk_bytes, p.size - p.next_offset);
    // Nothing in flight: one chunk goes even over the bound (progress).
    if (in_flight_ > 0 && in_flight_ + len > opts_.max_bytes_in_flight) return;
    if (redo) p.redo.pop_front();
    else p.next_offset += len;
    uint64_t req = next_request_++;
    requests_[req] = Request{id, off, len};
    p.outstanding.push_back(req);
    in_flight_ += len;
    if (p.redo.empty() && p.next_offset >= p.size) order_.pop_front();
    const NodeID from = p.sources[p.source];
    if (!hooks_.request_chunk(from, req, id, off, len)) {
      SourceFailed(id, Status::ObjectLost("node " + from.Hex() + " holding object " + id.Hex() + " cannot be reached"));
    }
  }
}

void PullManager::SourceFailed(const ObjectID& id, const Status& why) {
  auto it = pulls_.find(id);
  if (it == pulls_.end()) return;
  Pull_& p = it->second;
  if (p.source + 1 >= p.sources.size()) {
    if (p.sources.size() == 1) {
      Finish(id, why);
    } else {
      Finish(id, Status(why.code(), "object " + id.Hex() + " could not be pulled from any of the " +
                                        std::to_string(p.sources.size()) + " nodes holding it (the last: " +
                                        why.message() + ")"));
    }
    return;
  }
  // The chunks it had not answered are asked of the next source; the
  // received ones stay (every copy of an object holds the same bytes).
  stats_.retried++;
  p.source++;
  const bool listed = std::find(order_.begin(), order_.end(), id) != order_.end();
  for (uint64_t req : p.outstanding) {
    auto rq = requests_.find(req);
    if (rq == requests_.end()) continue;
    in_flight_ -= rq->second.length;
    p.redo.emplace_back(rq->second.offset, rq->second.length);
    requests_.erase(rq);
  }
  p.outstanding.clear();
  if (!listed && !p.redo.empty()) order_.push_back(id);
}

void PullManager::OnChunk(uint64_t request_id, const Status& why, uint64_t total_size, uint64_t offset,
                          const uint8_t* data, size_t n) {
  auto rq = requests_.find(request_id);
  if (rq == requests_.end()) return;  // its pull ended, or its source failed, already
  Request r = rq->second;
  requests_.erase(rq);
  in_flight_ -= r.length;
  auto it = pulls_.find(r.id);
  if (it == pulls_.end()) {
    Settle();
    return;
  }
  Pull_& p = it->second;
  auto& out = p.outstanding;
  out.erase(std::remove(out.begin(), out.end(), request_id), out.end());
  if (!why.ok()) {
    // This source's answer stands for the chunk: the request goes to the next one.
    p.redo.emplace_front(r.offset, r.length);
    SourceFailed(r.id, why);
  } else if (total_size != p.size || offset != r.offset || n != r.length) {
    p.redo.emplace_front(r.offset, r.length);
    SourceFailed(r.id, Status::IOError("object " + r.id.Hex() + " from node " + p.sources[p.source].Hex() +
                                       ": a chunk of " + std::to_string(n) + " bytes at " + std::to_string(offset) +
                                       " of " + std::to_string(total_size) + " does not match the request (" +
                                       std::to_string(r.length) + " at " + std::to_string(r.offset) + " of " +
                                       std::to_string(p.size) + ")"));
  } else {
    std::memcpy(p.buf + offset, data, n);
    p.received += n;
    stats_.chunks++;
    stats_.bytes += n;
    if (p.received == p.size) Finish(r.id, Status::OK());
  }
  Settle();
}

void PullManager::OnNodeGone(const NodeID& node, const Status& why) {
  std::vector<ObjectID> gone;
  for (auto& [id, p] : pulls_)
    if (p.sources[p.source] == node) gone.push_back(id);
  for (auto& id : gone) SourceFailed(id, why);
  Settle();
}

void PullManager::Finish(const ObjectID& id, const Status& s) {
  auto it = pulls_.find(id);
  if (it == pulls_.end()) return;
  Pull_ p = std::move(it->second);
  pulls_.erase(it);
  pulling_ -= p.size;
  for (uint64_t req : p.outstanding) {
    auto rq = requests_.find(req);
    if (rq == requests_.end()) continue;
    in_flight_ -= rq->second.length;
    requests_.erase(rq);
  }
  Status result = s;
  if (result.ok()) result = hooks_.seal(id);
  if (result.ok()) {
    stats_.completed++;
  } else {
    stats_.failed++;
    hooks_.abort(id);
  }
  settle_again_ = true;  // its bytes are free for a queued pull
  for (auto& w : p.waiters) w(result);
}

}  // namespace rayts::raylet
