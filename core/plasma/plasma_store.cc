#include "core/plasma/plasma_store.h"

#include <algorithm>
#include <string>
#include <utility>

namespace rayts::plasma {

PlasmaStore::PlasmaStore(uint64_t capacity, uint8_t* base)
    : allocator_(capacity), base_(base) {}

PlasmaStore::~PlasmaStore() = default;

StatusOr<uint64_t> PlasmaStore::Create(ClientId c, const ObjectID& id, uint64_t size,
                                       bool pinned, bool allow_spill) {
  if (objects_.count(id)) {
    const Entry& e = objects_.at(id);
    bool sealed = e.state == State::kSealed;
    return Status(sealed ? StatusCode::kObjectExists : StatusCode::kObjectBeingCreated,
                  "object " + id.Hex() + " already exists in the object store (" +
                      (sealed ? "sealed" : "being written") + " by client " + std::to_string(e.creator) +
                      ", asked by client " + std::to_string(c) + ")");
  }
  StatusOr<uint64_t> offset = AllocateWithRoom(id, size, "create object", allow_spill);
  if (!offset.ok()) return offset.status();
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
  e.last_use = next_use_++;
  AddRef(c, id, e);  // files it (UpdateLru)
  return e.offset;
}

StatusOr<uint64_t> PlasmaStore::AllocateWithRoom(const ObjectID& id, uint64_t size, const char* what,
                                                 bool allow_spill) {
  StatusOr<uint64_t> offset = allocator_.Allocate(size);
  if (offset.ok()) return offset;
  // Make room only if that can work: free plus evictable plus spillable
  // bytes must cover the request (fragmentation can still defeat it).
  const uint64_t need = Allocator::RoundUp(size);
  const uint64_t free_bytes = allocator_.capacity() - allocator_.used();
  std::vector<std::pair<uint64_t, ObjectID>> spillable;  // (last use, id)
  uint64_t spillable_bytes = 0;
  if (spill_ && allow_spill) {  // under pressure only: this walks every object
    for (const auto& [oid, e] : objects_) {
      if (e.state == State::kSealed && e.in_memory && !e.spilled && e.pinned && e.total_refs == 0 &&
          !e.delete_pending) {
        spillable.emplace_back(e.last_use, oid);
      }
    }
    std::sort(spillable.begin(), spillable.end());
    uint64_t disk = 0;  // what spilling them would write
    for (const auto& [use, oid] : spillable) {
      const Entry& e = objects_.at(oid);
      if (!spill_->Fits(disk + e.size)) break;
      disk += e.size;
      spillable_bytes += e.alloc_size;
    }
  }
  if (need > free_bytes + evictable_bytes_ + spillable_bytes) return OutOfMemoryError(id, size, what, Status::OK());
  while (!offset.ok() && EvictOne()) offset = allocator_.Allocate(size);
  Status spill_error;
  for (size_t i = 0; !offset.ok() && i < spillable.size(); i++) {
    Entry& e = objects_.at(spillable[i].second);
    spill_error = SpillOne(spillable[i].second, e);
    if (!spill_error.ok()) break;
    offset = allocator_.Allocate(size);
  }
  if (!offset.ok()) return OutOfMemoryError(id, size, what, spill_error);
  return offset;
}

Status PlasmaStore::SpillOne(const ObjectID& id, Entry& e) {
  RAYTS_CHECK(spill_ && e.in_memory && e.state == State::kSealed && e.total_refs == 0);
  if (!e.spilled) {
    RAYTS_RETURN_IF_ERROR(spill_->Write(id, base_ + e.offset, e.size));
    e.spilled = true;
    spill_count_++;
  }
  e.in_memory = false;
  UpdateLru(id, e);
  allocator_.Free(e.offset);
  return Status::OK();
}

Status PlasmaStore::Restore(const ObjectID& id, Entry& e) {
  RAYTS_CHECK(spill_ && !e.in_memory && e.spilled);
  StatusOr<uint64_t> offset = AllocateWithRoom(id, e.size, "restore spilled object", true);
  if (!offset.ok()) return offset.status();
  Status s = spill_->Read(id, base_ + *offset, e.size);
  if (!s.ok()) {
    allocator_.Free(*offset);
    return s;
  }
  e.offset = *offset;
  e.alloc_size = allocator_.BlockSize(e.offset);
  e.in_memory = true;
  restore_count_++;
  UpdateLru(id, e);
  return Status::OK();
}

Status PlasmaStore::Seal(ClientId c, const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return Status::NotFound("seal: object " + id.Hex() + " not found");
  Entry& e = it->second;
  if (e.state != State::kCreated) return Status::Invalid("seal: object " + id.Hex() + " is already sealed");
  if (e.creator != c) return Status::Invalid("seal: object " + id.Hex() + " was created by another client");
  e.state = State::kSealed;
  e.last_use = next_use_++;
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
        pg->second.results[slot] = GetResult{id, true, e.offset, e.size, Status::OK()};
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
      if (!e.in_memory) {
        Status s = Restore(id, e);
        if (!s.ok()) {
          pg.results[i].error = std::move(s);
          continue;
        }
      }
      e.last_use = next_use_++;
      pg.results[i] = GetResult{id, true, e.offset, e.size, Status::OK()};
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
  e.pinned = false;
  e.delete_pending = true;
  if (e.spilled && e.in_memory && spill_) {
    // Readers still map the memory copy; the disk copy is needed no more.
    spill_->Remove(id);
    e.spilled = false;
  }
  AfterRefsChanged(id, e);
}

Status PlasmaStore::Lose(const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.state != State::kSealed) {
    return Status::NotFound("object " + id.Hex() + " is not sealed in the object store");
  }
  Entry& e = it->second;
  e.pinned = false;
  auto& tombs = lost_[id];
  if (e.total_refs == 0) {
    FreeObject(id);
    return Status::OK();
  }
  // Its disk copy (if any) goes now: the file is named by the id, which a
  // reconstruction will create again.
  if (e.spilled && spill_) {
    spill_->Remove(id);
    e.spilled = false;
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
  UpdateLru(id, it->second);
}

bool PlasmaStore::Pin(const ObjectID& id) {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.state != State::kSealed) return false;
  if (!it->second.pinned) {
    it->second.pinned = true;
    UpdateLru(id, it->second);
  }
  return true;
}

std::optional<ClientId> PlasmaStore::SealedCreator(const ObjectID& id) const {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.state != State::kSealed) return std::nullopt;
  return it->second.creator;
}

std::optional<ClientId> PlasmaStore::CreatorOf(const ObjectID& id) const {
  auto it = objects_.find(id);
  if (it == objects_.end()) return std::nullopt;
  return it->second.creator;
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

std::optional<uint64_t> PlasmaStore::SpilledOnlySize(const ObjectID& id) const {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.state != State::kSealed || it->second.in_memory || !it->second.spilled ||
      !spill_) {
    return std::nullopt;
  }
  return it->second.size;
}

Status PlasmaStore::ReadSpilled(const ObjectID& id, uint64_t offset, uint64_t n, uint8_t* dst) const {
  if (!SpilledOnlySize(id)) return Status::NotFound("object " + id.Hex() + " is not spilled-only here");
  return spill_->ReadRange(id, offset, dst, n);
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
  const bool counts_pinned = e.pinned && e.in_memory && !e.spilled;
  if (counts_pinned != e.in_pinned) {
    if (counts_pinned) pinned_bytes_ += e.alloc_size;
    else pinned_bytes_ -= e.alloc_size;
    e.in_pinned = counts_pinned;
  }
  // A memory copy with a disk copy behind it is evictable even if pinned.
  const bool evictable = e.state == State::kSealed && e.in_memory && (!e.pinned || e.spilled) &&
                         e.total_refs == 0 && !e.delete_pending;
  if (evictable && !e.in_lru) {
    e.lru_it = lru_.insert(lru_.end(), id);
    e.in_lru = true;
    evictable_bytes_ += e.alloc_size;
    if (on_room_) on_room_();
  } else if (!evictable && e.in_lru) {
    lru_.erase(e.lru_it);
    e.in_lru = false;
    evictable_bytes_ -= e.alloc_size;
  }
}

void PlasmaStore::FreeObject(const ObjectID& id) {
  auto it = objects_.find(id);
  RAYTS_CHECK(it != objects_.end());
  if (on_freed_) on_freed_(id);  // must not call back into the store
  Entry& e = it->second;
  if (e.in_lru) {
    lru_.erase(e.lru_it);
    evictable_bytes_ -= e.alloc_size;
  }
  if (e.in_pinned) pinned_bytes_ -= e.alloc_size;
  for (const auto& [client, n] : e.refs) {
    auto cs = clients_.find(client);
    if (cs == clients_.end()) continue;
    cs->second.objects.erase(id);
    if (cs->second.objects.empty() && cs->second.gets.empty()) clients_.erase(cs);
  }
  const bool freed = e.in_memory;
  if (e.in_memory) allocator_.Free(e.offset);
  if (e.spilled && spill_) spill_->Remove(id);
  objects_.erase(it);
  if (freed && on_room_) on_room_();
}

bool PlasmaStore::EvictOne() {
  if (lru_.empty()) return false;
  const ObjectID id = lru_.front();
  evicted_count_++;
  Entry& e = objects_.at(id);
  if (e.spilled) {
    // Only the memory copy goes; the object stays, on disk.
    e.in_memory = false;
    UpdateLru(id, e);
    allocator_.Free(e.offset);
  } else {
    FreeObject(id);
  }
  return true;
}

Status PlasmaStore::OutOfMemoryError(const ObjectID& id, uint64_t size, const char* what,
                                     const Status& spill_error) const {
  uint64_t in_use = 0;  // referenced or being written, not pinned
  for (const auto& [oid, e] : objects_) {
    if (e.in_memory && !e.in_pinned && (e.total_refs > 0 || e.state == State::kCreated)) in_use += e.alloc_size;
  }
  std::string spill;
  if (spill_) {
    spill = "; spill disk " + std::to_string(spill_->used_bytes()) + " of " +
            std::to_string(spill_->limit_bytes()) + " bytes used (" + spill_->dir() + ")";
    if (!spill_error.ok()) spill += ", spilling failed: " + spill_error.message();
  } else {
    spill = "; spilling to disk is off";
  }
  return Status::OutOfMemory(
      std::string("cannot ") + what + " " + id.Hex() + " of " + std::to_string(size) +
      " bytes: object store " + std::to_string(allocator_.used()) + " of " +
      std::to_string(allocator_.capacity()) + " bytes used (" + std::to_string(pinned_bytes_) +
      " pinned by owners, " + std::to_string(in_use) + " in use by clients or being written, " +
      std::to_string(evictable_bytes_) + " evictable), largest free block " +
      std::to_string(allocator_.largest_free_block()) + " bytes" + spill +
      ". Release object refs you no longer need, or start with a larger object store or spill limit");
}

std::vector<ObjectInfo> PlasmaStore::ListObjects() const {
  std::vector<ObjectInfo> out;
  out.reserve(objects_.size());
  for (const auto& [id, e] : objects_) {
    out.push_back(ObjectInfo{id, e.size, e.state == State::kSealed, e.in_memory, e.spilled,
                             e.pinned, e.total_refs});
  }
  return out;
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
