#include "core/core_worker/reference_counter.h"

namespace rayts {

void ReferenceCounter::AddOwned(const ObjectID& id, int64_t local) {
  Ref& r = refs_[id];
  r.owned = true;
  r.owner_address.clear();
  r.local += static_cast<int32_t>(local);
}

std::pair<ReferenceCounter::Ref*, bool> ReferenceCounter::Touch(const ObjectID& id, const std::string& owner_address) {
  auto [it, inserted] = refs_.try_emplace(id);
  if (inserted) {
    it->second.owned = owner_address.empty();
    it->second.owner_address = owner_address;
  }
  return {&it->second, inserted && !owner_address.empty()};
}

bool ReferenceCounter::AddLocal(const ObjectID& id, const std::string& owner_address) {
  auto [r, created] = Touch(id, owner_address);
  r->local++;
  return created;
}

void ReferenceCounter::AddSubmitted(const ObjectID& id) {
  auto it = refs_.find(id);
  if (it != refs_.end()) it->second.submitted++;
}

bool ReferenceCounter::AddSubmittedRef(const ObjectID& id, const std::string& owner_address) {
  auto [r, created] = Touch(id, owner_address);
  r->submitted++;
  return created;
}

bool ReferenceCounter::AddContained(const ObjectID& inner, const std::string& owner_address) {
  auto [r, created] = Touch(inner, owner_address);
  r->contained++;
  return created;
}

bool ReferenceCounter::SetContains(const ObjectID& outer, std::vector<ObjectID> inners) {
  auto it = refs_.find(outer);
  if (it == refs_.end()) return false;
  auto& c = it->second.contains;
  c.insert(c.end(), inners.begin(), inners.end());
  return true;
}

bool ReferenceCounter::AddBorrower(const ObjectID& id, const std::string& address, int64_t n) {
  auto it = refs_.find(id);
  if (it == refs_.end() || !it->second.owned || n <= 0) return false;
  auto& b = it->second.borrowers;
  if (!b) b = std::make_unique<std::map<std::string, int64_t>>();
  (*b)[address] += n;
  return true;
}

void ReferenceCounter::RemoveBorrower(const ObjectID& id, const std::string& address, int64_t n) {
  auto it = refs_.find(id);
  if (it == refs_.end()) { bad_decrements_++; return; }
  auto& table = it->second.borrowers;
  if (!table) { bad_decrements_++; return; }
  auto b = table->find(address);
  if (b == table->end()) { bad_decrements_++; return; }
  if (b->second < n) bad_decrements_++;
  b->second -= n;
  if (b->second <= 0) table->erase(b);
  MaybeRelease(id);
}

std::vector<ObjectID> ReferenceCounter::DropBorrower(const std::string& address) {
  std::vector<ObjectID> ids;
  for (auto& [id, r] : refs_) {
    if (r.borrowers && r.borrowers->erase(address) > 0) ids.push_back(id);
  }
  for (auto& id : ids) MaybeRelease(id);
  return ids;
}

bool ReferenceCounter::AddRegistered(const ObjectID& id, int64_t n) {
  auto it = refs_.find(id);
  if (it == refs_.end()) return false;
  it->second.registered += n;
  return true;
}

void ReferenceCounter::SetRegistered(const ObjectID& id, int64_t n) {
  auto it = refs_.find(id);
  if (it != refs_.end()) it->second.registered = n;
}

void ReferenceCounter::ReleaseIfUnused(const ObjectID& id) { MaybeRelease(id); }

void ReferenceCounter::Dec(const ObjectID& id, int64_t n, Kind kind) {
  auto it = refs_.find(id);
  if (it == refs_.end()) { bad_decrements_++; return; }
  int32_t& c = kind == kLocal ? it->second.local : kind == kSubmitted ? it->second.submitted : it->second.contained;
  if (c < n) { bad_decrements_++; c = 0; } else { c = static_cast<int32_t>(c - n); }
  MaybeRelease(id);
}

void ReferenceCounter::MaybeRelease(const ObjectID& id) {
  auto it = refs_.find(id);
  if (it == refs_.end() || !it->second.Unused()) return;
  Ref r = std::move(it->second);
  refs_.erase(it);
  on_release_(id, r);
  // The freed value no longer holds the refs inside it.
  for (auto& inner : r.contains) Dec(inner, 1, kContained);
}

}  // namespace rayts
