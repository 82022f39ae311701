// PlasmaStore: the node's object table over the shared-memory region.
//
// Role: bookkeeping for plasma objects. Clients (local processes, by ClientId)
// Create an object, write it through their own mapping, Seal it, Get it (which
// takes a reference), Release it; the owner Deletes it. The store works purely
// in offsets through an Allocator; it never reads or writes object bytes.
// Lifecycle: CREATED (being written; the creator holds one ref) -> SEALED
// (immutable, readable) -> gone, through Delete, Abort (CREATED only), eviction
// or the creator's disconnect.
// Location of a SEALED object: in memory, spilled (a copy in the SpillStore,
// no memory), or both (restored: the disk copy stays until Delete, so the
// memory copy is evictable like an unpinned one and dropping it costs no
// write).
// Eviction: an object is evictable when SEALED, unpinned, unreferenced and not
// delete-pending; evictable objects are kept in LRU order of the moment they
// became evictable (so a Release that drops the last ref makes an object the
// most recent). Create evicts least-recent first only when the allocator
// cannot fit the request and eviction can free enough bytes.
// Delete while referenced: the object stays readable (Get and Contains still
// see it, Create of the same id is ObjectExists) until its last ref is
// released, then it is freed.
// Ownership: owns the Allocator and all entries; `base` (the mapping the
// offsets are relative to) and the SpillStore are borrowed. The store reads
// and writes object bytes only to spill and restore them.
// Thread safety: none. The node server calls every method on its io thread.
// Get callbacks run on that thread, synchronously inside Get, Seal or
// CancelGet, after the store's state is consistent; they may call back in.
// Invariants: an object's memory is freed exactly once; a pinned or referenced
// object is never evicted; every pending get completes exactly once (callback)
// or is dropped silently with its client (DisconnectClient).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/plasma/allocator.h"
#include "core/plasma/spill_store.h"

namespace rayts::plasma {

using ClientId = uint64_t;

struct GetResult {
  ObjectID id;
  bool found = false;
  uint64_t offset = 0;
  uint64_t size = 0;
  Status error;  // why a present object could not be returned (restore failed)
};

// One object as listed by PlasmaStore::ListObjects.
struct ObjectInfo {
  ObjectID id;
  uint64_t size = 0;
  bool sealed = false;
  bool in_memory = false;
  bool spilled = false;
  bool pinned = false;  // the owner has not freed it
  uint64_t refs = 0;    // client refs (mapped for read or being written)
};

using GetCallback = std::function<void(std::vector<GetResult>)>;

class PlasmaStore {
 public:
  PlasmaStore(uint64_t capacity, uint8_t* base);
  ~PlasmaStore();

  // Enables spilling to `spill` (borrowed; must outlive the store or be
  // detached with nullptr while nothing is spilled).
  void SetSpillStore(SpillStore* spill) { spill_ = spill; }

  // Called when room may have appeared: an object's memory was freed or an
  // object became evictable. It runs inside the store call that did it, so
  // it must not call back into the store (the node server posts its work).
  void SetRoomCallback(std::function<void()> cb) { on_room_ = std::move(cb); }

  PlasmaStore(const PlasmaStore&) = delete;
  PlasmaStore& operator=(const PlasmaStore&) = delete;

  // Reserves `size` bytes for `id` and returns their offset; client `c` holds
  // a ref until Seal or Abort. ObjectExists if a sealed `id` is present, ObjectBeingCreated if
  // it is still being written; OutOfMemory
  // (ObjectStoreFull) if the request cannot fit even after evicting.
  // allow_spill = false: evict but do not spill (the caller will first try
  // to free memory another way, then ask again).
  StatusOr<uint64_t> Create(ClientId c, const ObjectID& id, uint64_t size, bool pinned,
                            bool allow_spill = true);
  // CREATED -> SEALED by its creator; completes gets waiting on it.
  Status Seal(ClientId c, const ObjectID& id);
  // Frees an unsealed object; only its creator may abort it.
  Status Abort(ClientId c, const ObjectID& id);

  // Takes one ref for `c` per sealed id. If every id is sealed, calls cb now
  // and returns 0; else returns a non-zero get id and calls cb (results in
  // request order) when the last one seals, or at CancelGet.
  uint64_t Get(ClientId c, std::vector<ObjectID> ids, GetCallback cb);
  // Completes a pending get now; ids still missing get found=false (no ref).
  // Unknown or completed get ids are ignored.
  void CancelGet(uint64_t get_id);

  // Drops one ref of `c`. No-op if `c` holds none or the object is unsealed.
  void Release(ClientId c, const ObjectID& id);
  // The owner freed the object: unpin it and free it now if unreferenced,
  // else when its last ref is released. No-op if absent.
  void Delete(const ObjectID& id);
  // Test hook (simulated node failure): the store loses its copy of a sealed
  // object now. Get and Contains stop seeing it at once (a Get answers
  // not-found without waiting) and Create of the same id succeeds (lineage
  // reconstruction). Bytes still mapped by readers stay allocated under a
  // tombstone key until those readers Release or disconnect.
  Status Lose(const ObjectID& id);
  // The client that created `id`, if it is present and sealed.
  std::optional<ClientId> SealedCreator(const ObjectID& id) const;
  // The client that created `id` (sealed or still being written), if present.
  std::optional<ClientId> CreatorOf(const ObjectID& id) const;
  // Makes the object evictable once unreferenced. No-op if absent.
  void Unpin(const ObjectID& id);
  // Makes a sealed object unevictable (a secondary copy made the primary);
  // false if it is absent or not sealed.
  bool Pin(const ObjectID& id);
  // Called with each id whose copy leaves the store (evicted, deleted,
  // aborted) as it goes; it must not call back into the store.
  void SetOnFreed(std::function<void(const ObjectID&)> f) { on_freed_ = std::move(f); }
  // Drops every ref of `c`, aborts its unsealed creations and forgets its
  // pending gets without calling their callbacks.
  void DisconnectClient(ClientId c);

  // The size of `id` when it is sealed and on disk only (spilled, not in
  // memory); nullopt otherwise.
  std::optional<uint64_t> SpilledOnlySize(const ObjectID& id) const;
  // Copies `n` bytes from `offset` of the spilled-only `id` into dst, from
  // its spill file, without restoring it (a chunk served to another node:
  // Ray's push from spilled objects). NotFound when it is not spilled-only.
  Status ReadSpilled(const ObjectID& id, uint64_t offset, uint64_t n, uint8_t* dst) const;
  // True if `id` is present and sealed (in memory or spilled).
  bool Contains(const ObjectID& id) const;
  // Every object with its location and size, in no particular order.
  std::vector<ObjectInfo> ListObjects() const;

  uint64_t used_bytes() const { return allocator_.used(); }  // reserved, 64-byte units
  uint64_t high_water_bytes() const { return allocator_.high_water(); }  // see Allocator::high_water
  uint64_t capacity() const { return allocator_.capacity(); }
  uint64_t num_objects() const { return objects_.size(); }    // created + sealed
  uint64_t pinned_bytes() const { return pinned_bytes_; }
  uint64_t evicted_count() const { return evicted_count_; }
  uint64_t evictable_bytes() const { return evictable_bytes_; }
  size_t num_pending_gets() const { return pending_gets_.size(); }
  uint64_t spilled_bytes() const { return spill_ ? spill_->used_bytes() : 0; }  // on disk now
  uint64_t spill_limit() const { return spill_ ? spill_->limit_bytes() : 0; }
  uint64_t num_spilled() const { return spill_ ? spill_->num_files() : 0; }     // objects on disk now
  uint64_t spill_count() const { return spill_count_; }      // objects written to disk, cumulative
  uint64_t restore_count() const { return restore_count_; }  // objects read back, cumulative
  const uint8_t* base() const { return base_; }

 private:
  enum class State { kCreated, kSealed };

  struct Entry {
    uint64_t offset = 0;
    uint64_t size = 0;        // as requested
    uint64_t alloc_size = 0;  // as reserved by the allocator
    State state = State::kCreated;
    ClientId creator = 0;
    std::unordered_map<ClientId, uint32_t> refs;
    uint64_t total_refs = 0;
    bool pinned = false;
    bool delete_pending = false;
    bool in_lru = false;
    bool in_memory = true;     // offset/alloc_size are valid
    bool spilled = false;      // the SpillStore has a copy
    bool in_pinned = false;    // counted in pinned_bytes_
    uint64_t last_use = 0;     // spill order: least recent first
    std::list<ObjectID>::iterator lru_it;
  };

  struct PendingGet {
    ClientId client = 0;
    std::vector<GetResult> results;
    // Distinct ids still missing -> the result slots waiting for each.
    std::unordered_map<ObjectID, std::vector<size_t>, IdHash> missing;
    GetCallback cb;
  };

  struct ClientState {
    std::unordered_set<ObjectID, IdHash> objects;  // ids it holds refs on
    std::unordered_set<uint64_t> gets;             // its pending gets
  };

  using Completion = std::pair<GetCallback, std::vector<GetResult>>;

  void AddRef(ClientId c, const ObjectID& id, Entry& e);
  // Drops `n` refs of c (all of them if n == 0). Returns true if it had any.
  bool DropRefs(ClientId c, const ObjectID& id, Entry& e, uint32_t n);
  // Frees an unreferenced delete-pending object or files it as evictable.
  void AfterRefsChanged(const ObjectID& id, Entry& e);
  // Files `e` by its current flags: in or out of the LRU (evictable) and
  // counted or not in pinned_bytes_. Call after changing any of them.
  void UpdateLru(const ObjectID& id, Entry& e);
  // Finds `size` bytes: allocator, then eviction, then spilling.
  StatusOr<uint64_t> AllocateWithRoom(const ObjectID& id, uint64_t size, const char* what, bool allow_spill);
  // Moves `e` out of memory (writing its spill copy unless it has one).
  Status SpillOne(const ObjectID& id, Entry& e);
  // Brings a spilled-only `e` back into memory.
  Status Restore(const ObjectID& id, Entry& e);
  void FreeObject(const ObjectID& id);
  bool EvictOne();
  Status OutOfMemoryError(const ObjectID& id, uint64_t size, const char* what, const Status& spill_error) const;
  Completion TakePendingGet(uint64_t get_id);

  Allocator allocator_;
  uint8_t* const base_;
  std::unordered_map<ObjectID, Entry, IdHash> objects_;
  std::list<ObjectID> lru_;  // evictable objects, least recent first
  std::unordered_map<uint64_t, PendingGet> pending_gets_;
  std::unordered_map<ObjectID, std::vector<uint64_t>, IdHash> waiters_;  // id -> get ids
  std::unordered_map<ClientId, ClientState> clients_;
  uint64_t next_get_id_ = 1;
  uint64_t pinned_bytes_ = 0;
  uint64_t evictable_bytes_ = 0;
  uint64_t evicted_count_ = 0;
  SpillStore* spill_ = nullptr;
  std::function<void()> on_room_;
  uint64_t spill_count_ = 0;
  uint64_t restore_count_ = 0;
  uint64_t next_use_ = 1;
  // Lost ids (Lose) -> tombstone keys of copies readers still hold.
  std::unordered_map<ObjectID, std::vector<ObjectID>, IdHash> lost_;
  std::function<void(const ObjectID&)> on_freed_;  // SetOnFreed
};

}  // namespace rayts::plasma
