#include "core/plasma/plasma_store.h"

#include <algorithm>
#include <string>
#include <utility>

namespace rayts::plasma {

PlasmaStore::PlasmaStore(uint64_t capacity, uint8_t* base)
    : allocator_(capacity), base_(base) {}

PlasmaStore::~PlasmaStore() = default;

StatusOr<uint64_t> PlasmaStore::Create(ClientId c, const ObjectID& id, uint64_t size,
                                       bool pinned) {
  if (objects_.count(id)) {
    return Status::AlreadyExists("object " + id.Hex() + " already exists in the object store");
  }
  StatusOr<uint64_t> offset = allocator_.Allocate(size);
  if (!offset.ok()) {
    // Evict only if that can work: free bytes plus evictable bytes must
    // cover the request (fragmentation can still defeat it).
    const uint64_t need = Allocator::RoundUp(size);
    const uint64_t reclaimable = allocator_.capacity() - allocator_.used() + evictable_bytes_;
    if (need > reclaimable) return OutOfMemoryError(id, size);
    while (!offset.ok() && EvictOne()) offset = allocator_.Allocate(size);
    if (!offset.ok()) return OutOfMemoryError(id, size);
  }
  if (auto lost = lost_.find(id); lost != lost_.end()) {
    // Recreated (reconstruction): keep only tombstones readers still hold,
    // so their releases find the old copy, not this one.
    auto& t = lost->second;
    t.erase(std::remove_if(t.begin(), t.end(), [&](const ObjectID& x) { return !objects_.count(x); }), t.end());
    if (t.empty()) lost_.erase(lost);
  }
  Entry& e = objects_[id];
  e.offset = *offset;
  e.size = size;
  e.alloc_size = allocator_.BlockSize(e.offset);
  e.state = State::kCreated;
  e.creator = c;
  e.pinned = pinned;
  if (pinned) pinned_bytes_ += e.alloc_size;
  AddRef(c, id, e);
  return e.offset;
}

Status PlasmaStore::Seal(ClientId c, const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::NotFound("seal: object " + id.Hex() + " not found");
  Entry& e = it->second;
  if (e.state != State::kCreated) return Status::Invalid("seal: object " + id.Hex() + " is already sealed");
  if (e.creator != c) return Status::Invalid("seal: object " + id.Hex() + " was created by another client");
  e.state = State::kSealed;
  DropRefs(c, id, e, 1);

  std::vector<Completion> done;
  auto w = waiters_.find(id);
  if (w != waiters_.end()) {
    std::vector<uint64_t> get_ids = std::move(w->second);
    waiters_.erase(w);
    for (uint64_t get_id : get_ids) {
      auto pg = pending_gets_.find(get_id);
      RAYTS_CHECK(pg != pending_gets_.end());
      auto slots = pg->second.missing.find(id);
      RAYTS_CHECK(slots != pg->second.missing.end());
      for (size_t slot : slots->second) {
        pg->second.results[slot] = GetResult{id, true, e.offset, e.size};
        AddRef(pg->second.client, id, e);
      }
      pg->second.missing.erase(slots);
      if (pg->second.missing.empty()) done.push_back(TakePendingGet(get_id));
    }
  }
  AfterRefsChanged(id, e);  // may free e (deleted while being written)
  for (auto& [cb, results] : done) {
    if (cb) cb(std::move(results));
  }
  return Status::OK();
}

Status PlasmaStore::Abort(ClientId c, const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::NotFound("abort: object " + id.Hex() + " not found");
  if (it->second.state != State::kCreated) {
    return Status::Invalid("abort: object " + id.Hex() + " is already sealed");
  }
  if (it->second.creator != c) {
    return Status::Invalid("abort: object " + id.Hex() + " was created by another client");
  }
  FreeObject(id);
  return Status::OK();
}

uint64_t PlasmaStore::Get(ClientId c, std::vector<ObjectID> ids, GetCallback cb) {
  PendingGet pg;
  pg.client = c;
  pg.results.resize(ids.size());
  for (size_t i = 0; i < ids.size(); i++) {
    const ObjectID& id = ids[i];
    pg.results[i].id = id;
    auto it = objects_.find(id);
    if (it != objects_.end() && it->second.state == State::kSealed) {
      Entry& e = it->second;
      pg.results[i] = GetResult{id, true, e.offset, e.size};
      AddRef(c, id, e);
    } else if (it == objects_.end() && lost_.count(id)) {
      pg.results[i].found = false;  // lost: waiting would not bring it back
    } else {
      pg.missing[id].push_back(i);
    }
  }
  if (pg.missing.empty()) {
    if (cb) cb(std::move(pg.results));
    return 0;
  }
  const uint64_t get_id = next_get_id_++;
  for (const auto& [id, slots] : pg.missing) waiters_[id].push_back(get_id);
  clients_[c].gets.insert(get_id);
  pg.cb = std::move(cb);
  pending_gets_.emplace(get_id, std::move(pg));
  return get_id;
}

void PlasmaStore::CancelGet(uint64_t get_id) {
  auto pg = pending_gets_.find(get_id);
  if (pg == pending_gets_.end()) return;
  for (const auto& [id, slots] : pg->second.missing) {
    auto w = waiters_.find(id);
    RAYTS_CHECK(w != waiters_.end());
    auto& v = w->second;
    v.erase(std::remove(v.begin(), v.end(), get_id), v.end());
    if (v.empty()) waiters_.erase(w);
  }
  auto [cb, results] = TakePendingGet(get_id);
  if (cb) cb(std::move(results));
}

void PlasmaStore::Release(ClientId c, const ObjectID& id) {
  auto lost = lost_.find(id);
  if (lost != lost_.end()) {
    // A reader of a lost copy gives it back (tombstone), before the new one.
    for (auto& tomb : lost->second) {
      auto t = objects_.find(tomb);
      if (t == objects_.end() || !t->second.refs.count(c)) continue;
      if (DropRefs(c, tomb, t->second, 1)) AfterRefsChanged(tomb, t->second);
      return;
    }
  }
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.state != State::kSealed) return;
  if (DropRefs(c, id, it->second, 1)) AfterRefsChanged(id, it->second);
}

void PlasmaStore::Delete(const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  Entry& e = it->second;
  if (e.pinned) {
    e.pinned = false;
    pinned_bytes_ -= e.alloc_size;
  }
  e.delete_pending = true;
  AfterRefsChanged(id, e);
}

Status PlasmaStore::Lose(const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.state != State::kSealed) {
    return Status::NotFound("object " + id.Hex() + " is not sealed in the object store");
  }
  Entry& e = it->second;
  if (e.pinned) {
    e.pinned = false;
    pinned_bytes_ -= e.alloc_size;
  }
  auto& tombs = lost_[id];
  if (e.total_refs == 0) {
    FreeObject(id);
    return Status::OK();
  }
  // Readers still map the bytes: keep them under a tombstone key.
  ObjectID tomb = ObjectID::FromRandom();
  e.delete_pending = true;
  UpdateLru(id, e);
  Entry moved = std::move(e);
  objects_.erase(it);
  for (const auto& [client, n] : moved.refs) {
    auto cs = clients_.find(client);
    if (cs == clients_.end()) continue;
    cs->second.objects.erase(id);
    cs->second.objects.insert(tomb);
  }
  objects_.emplace(tomb, std::move(moved));
  tombs.push_back(tomb);
  return Status::OK();
}

void PlasmaStore::Unpin(const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end() || !it->second.pinned) return;
  it->second.pinned = false;
  pinned_bytes_ -= it->second.alloc_size;
  UpdateLru(id, it->second);
}

void PlasmaStore::DisconnectClient(ClientId c) {
  auto cit = clients_.find(c);
  if (cit == clients_.end()) return;
  ClientState st = std::move(cit->second);
  clients_.erase(cit);
  for (uint64_t get_id : st.gets) {
    auto pg = pending_gets_.find(get_id);
    RAYTS_CHECK(pg != pending_gets_.end());
    for (const auto& [id, slots] : pg->second.missing) {
      auto w = waiters_.find(id);
      RAYTS_CHECK(w != waiters_.end());
      auto& v = w->second;
      v.erase(std::remove(v.begin(), v.end(), get_id), v.end());
      if (v.empty()) waiters_.erase(w);
    }
    pending_gets_.erase(pg);  // refs it took are among st.objects
  }
  for (const ObjectID& id : st.objects) {
    auto it = objects_.find(id);
    RAYTS_CHECK(it != objects_.end());
    Entry& e = it->second;
    if (e.state == State::kCreated && e.creator == c) {
      FreeObject(id);
    } else if (DropRefs(c, id, e, 0)) {
      AfterRefsChanged(id, e);
    }
  }
}

bool PlasmaStore::Contains(const ObjectID& id) const {
  auto it = objects_.find(id);
  return it != objects_.end() && it->second.state == State::kSealed;
}

void PlasmaStore::AddRef(ClientId c, const ObjectID& id, Entry& e) {
  e.refs[c]++;
  e.total_refs++;
  clients_[c].objects.insert(id);
  UpdateLru(id, e);
}

bool PlasmaStore::DropRefs(ClientId c, const ObjectID& id, Entry& e, uint32_t n) {
  auto r = e.refs.find(c);
  if (r == e.refs.end()) return false;
  const uint32_t drop = n == 0 ? r->second : std::min(n, r->second);
  r->second -= drop;
  e.total_refs -= drop;
  if (r->second == 0) {
    e.refs.erase(r);
    auto cs = clients_.find(c);
    if (cs != clients_.end()) {
      cs->second.objects.erase(id);
      if (cs->second.objects.empty() && cs->second.gets.empty()) clients_.erase(cs);
    }
  }
  return true;
}

void PlasmaStore::AfterRefsChanged(const ObjectID& id, Entry& e) {
  if (e.delete_pending && e.total_refs == 0) {
    FreeObject(id);
  } else {
    UpdateLru(id, e);
  }
}

void PlasmaStore::UpdateLru(const ObjectID& id, Entry& e) {
  const bool evictable =
      e.state == State::kSealed && !e.pinned && e.total_refs == 0 && !e.delete_pending;
  if (evictable && !e.in_lru) {
    e.lru_it = lru_.insert(lru_.end(), id);
    e.in_lru = true;
    evictable_bytes_ += e.alloc_size;
  } else if (!evictable && e.in_lru) {
    lru_.erase(e.lru_it);
    e.in_lru = false;
    evictable_bytes_ -= e.alloc_size;
  }
}

void PlasmaStore::FreeObject(const ObjectID& id) {
  auto it = objects_.find(id);
  RAYTS_CHECK(it != objects_.end());
  Entry& e = it->second;
  if (e.in_lru) {
    lru_.erase(e.lru_it);
    evictable_bytes_ -= e.alloc_size;
  }
  if (e.pinned) pinned_bytes_ -= e.alloc_size;
  for (const auto& [client, n] : e.refs) {
    auto cs = clients_.find(client);
    if (cs == clients_.end()) continue;
    cs->second.objects.erase(id);
    if (cs->second.objects.empty() && cs->second.gets.empty()) clients_.erase(cs);
  }
  allocator_.Free(e.offset);
  objects_.erase(it);
}

bool PlasmaStore::EvictOne() {
  if (lru_.empty()) return false;
  const ObjectID id = lru_.front();
  evicted_count_++;
  FreeObject(id);
  return true;
}

Status PlasmaStore::OutOfMemoryError(const ObjectID& id, uint64_t size) const {
  uint64_t in_use = 0;  // referenced or being written, not pinned
  for (const auto& [oid, e] : objects_) {
    if (!e.pinned && (e.total_refs > 0 || e.state == State::kCreated)) in_use += e.alloc_size;
  }
  return Status::OutOfMemory(
      "cannot create object " + id.Hex() + " of " + std::to_string(size) +
      " bytes: object store capacity " + std::to_string(allocator_.capacity()) + " bytes, " +
      std::to_string(allocator_.used()) + " used (" + std::to_string(pinned_bytes_) +
      " pinned by owners, " + std::to_string(in_use) + " in use by clients or being written, " +
      std::to_string(evictable_bytes_) + " evictable), largest free block " +
      std::to_string(allocator_.largest_free_block()) +
      " bytes. Release object refs you no longer need, or start with a larger object store");
}

PlasmaStore::Completion PlasmaStore::TakePendingGet(uint64_t get_id) {
  auto pg = pending_gets_.find(get_id);
  RAYTS_CHECK(pg != pending_gets_.end());
  Completion out{std::move(pg->second.cb), std::move(pg->second.results)};
  const ClientId c = pg->second.client;
  pending_gets_.erase(pg);
  auto cs = clients_.find(c);
  if (cs != clients_.end()) {
    cs->second.gets.erase(get_id);
    if (cs->second.objects.empty() && cs->second.gets.empty()) clients_.erase(cs);
  }
  return out;
}

}  // namespace rayts::plasma
