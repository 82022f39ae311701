// SpillStore: the on-disk side of the object store (Ray's "object spilling").
//
// Role: holds copies of plasma objects that the store moved out of shared
// memory to make room. One file per object, named by its hex id, inside a
// directory this SpillStore creates (mkdtemp `<parent>/spill_XXXXXX`) and
// removes, with everything in it, when destroyed. Bytes on disk are counted
// against a limit; a write that would pass the limit fails with
// OutOfMemory before touching the disk, a write the filesystem refuses
// (ENOSPC, EIO) fails with IOError and leaves nothing behind.
// Ownership: owns the directory and its files. Data pointers passed to
// Write/Read are borrowed for the call only.
// Thread safety: none. The node server calls it from its io thread only
// (through PlasmaStore).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/common/id.h"
#include "core/common/status.h"

namespace rayts::plasma {

class SpillStore {
 public:
  // `max_bytes` < 0: the free space of the filesystem holding `parent`
  // minus a margin (min(10% of that free space, 1 GiB)). 0 disables
  // spilling (every Write fails with OutOfMemory).
  static StatusOr<std::unique_ptr<SpillStore>> Create(const std::string& parent, int64_t max_bytes);
  ~SpillStore();

  SpillStore(const SpillStore&) = delete;
  SpillStore& operator=(const SpillStore&) = delete;

  // Writes `size` bytes as the spilled copy of `id`. AlreadyExists if `id`
  // has one; OutOfMemory if the limit would be passed; IOError on a failed
  // write (the partial file is removed).
  Status Write(const ObjectID& id, const uint8_t* data, uint64_t size);
  // Reads the whole spilled copy of `id` into dst (which has room for it).
  Status Read(const ObjectID& id, uint8_t* dst, uint64_t size) const;
  // Reads `size` bytes from `offset` of the spilled copy of `id` (a chunk
  // served to another node). Invalid when the range passes its end.
  Status ReadRange(const ObjectID& id, uint64_t offset, uint8_t* dst, uint64_t size) const;
  // Deletes the spilled copy of `id` and gives its bytes back. No-op if absent.
  void Remove(const ObjectID& id);
  bool Has(const ObjectID& id) const { return files_.count(id) > 0; }

  // True if `size` more bytes fit under the limit.
  bool Fits(uint64_t size) const { return used_ + size <= limit_; }
  uint64_t used_bytes() const { return used_; }
  uint64_t limit_bytes() const { return limit_; }
  uint64_t num_files() const { return files_.size(); }
  const std::string& dir() const { return dir_; }

 private:
  SpillStore(std::string dir, uint64_t limit) : dir_(std::move(dir)), limit_(limit) {}
  std::string PathOf(const ObjectID& id) const;

  std::string dir_;
  uint64_t limit_;
  uint64_t used_ = 0;
  std::unordered_map<ObjectID, uint64_t, IdHash> files_;  // id -> bytes on disk
};

}  // namespace rayts::plasma
