#include "core/raylet/object_pull.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace rayts::raylet {

PullManager::PullManager(Options opts, Hooks hooks) : opts_(opts), hooks_(std::move(hooks)) {
  if (opts_.chunk_bytes == 0) opts_.chunk_bytes = 1;
  opts_.max_bytes_in_flight = std::max(opts_.max_bytes_in_flight, opts_.chunk_bytes);
}

bool PullManager::Pull(const ObjectID& id, const NodeID& from, uint64_t size, Done done) {
  auto it = pulls_.find(id);
  if (it != pulls_.end()) {
    stats_.merged++;
    it->second.waiters.push_back(std::move(done));
    return false;
  }
  auto buf = hooks_.create(id, size);
  if (!buf.ok()) {
    stats_.failed++;
    done(buf.status());
    return false;
  }
  stats_.started++;
  Pull_& p = pulls_[id];
  p.from = from;
  p.size = size;
  p.buf = *buf;
  p.waiters.push_back(std::move(done));
  if (size == 0) {
    Finish(id, Status::OK());
    return true;
  }
  order_.push_back(id);
  Pump();
  return true;
}

void PullManager::Pump() {
  while (!order_.empty()) {
    ObjectID id = order_.front();
    auto it = pulls_.find(id);
    if (it == pulls_.end() || it->second.next_offset >= it->second.size) {
      order_.pop_front();
      continue;
    }
    Pull_& p = it->second;
    uint64_t len = std::min(opts_.chunk_bytes, p.size - p.next_offset);
    // Nothing in flight: one chunk goes even over the bound (progress).
    if (in_flight_ > 0 && in_flight_ + len > opts_.max_bytes_in_flight) return;
    uint64_t req = next_request_++;
    requests_[req] = Request{id, p.next_offset, len};
    p.outstanding.push_back(req);
    in_flight_ += len;
    uint64_t off = p.next_offset;
    p.next_offset += len;
    if (p.next_offset >= p.size) order_.pop_front();
    if (!hooks_.request_chunk(p.from, req, id, off, len)) {
      Finish(id, Status::ObjectLost("node " + p.from.Hex() + " holding object " + id.Hex() + " cannot be reached"));
    }
  }
}

void PullManager::OnChunk(uint64_t request_id, const Status& why, uint64_t total_size, uint64_t offset,
                          const uint8_t* data, size_t n) {
  auto rq = requests_.find(request_id);
  if (rq == requests_.end()) return;  // its pull ended already
  Request r = rq->second;
  requests_.erase(rq);
  in_flight_ -= r.length;
  auto it = pulls_.find(r.id);
  if (it == pulls_.end()) {
    Pump();
    return;
  }
  Pull_& p = it->second;
  auto& out = p.outstanding;
  out.erase(std::remove(out.begin(), out.end(), request_id), out.end());
  if (!why.ok()) {
    Finish(r.id, why);
  } else if (total_size != p.size || offset != r.offset || n != r.length) {
    Finish(r.id, Status::IOError("object " + r.id.Hex() + " from node " + p.from.Hex() + ": a chunk of " +
                                 std::to_string(n) + " bytes at " + std::to_string(offset) + " of " +
                                 std::to_string(total_size) + " does not match the request (" +
                                 std::to_string(r.length) + " at " + std::to_string(r.offset) + " of " +
                                 std::to_string(p.size) + ")"));
  } else {
    std::memcpy(p.buf + offset, data, n);
    p.received += n;
    stats_.chunks++;
    stats_.bytes += n;
    if (p.received == p.size) Finish(r.id, Status::OK());
  }
  Pump();
}

void PullManager::OnNodeGone(const NodeID& node, const Status& why) {
  std::vector<ObjectID> gone;
  for (auto& [id, p] : pulls_)
    if (p.from == node) gone.push_back(id);
  for (auto& id : gone) Finish(id, why);
  Pump();
}

void PullManager::Finish(const ObjectID& id, const Status& s) {
  auto it = pulls_.find(id);
  if (it == pulls_.end()) return;
  Pull_ p = std::move(it->second);
  pulls_.erase(it);
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
  for (auto& w : p.waiters) w(result);
}

}  // namespace rayts::raylet
