// ResourceSet: a bag of named resource amounts ("CPU", "GPU", "memory",
// custom names) held in fixed point.
//
// Role: the unit of resource accounting in the raylet. Amounts are stored as
// int64 counts of 1/10000 of a unit, so fractional requests add and subtract
// exactly: ten 0.1-CPU leases sum to exactly 1 CPU, never 0.9999999.
// Ownership: a plain value type; copy freely.
// Thread safety: none needed (no shared state); a const instance may be read
// from any thread.
// Invariants: no entry is ever zero (zero entries are dropped, so equality
// and empty() ignore them). Every amount is >= 0 except after
// SubtractAllowingNegative(), which exists for the one caller that must
// overdraw (LeaseManager taking CPU back from an unblocked worker).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/common/status.h"

namespace rayts::raylet {

class ResourceSet {
 public:
  // Fixed-point scale: 1.0 of a resource is this many units.
  static constexpr int64_t kUnitsPerWhole = 10000;
  // Largest amount accepted from a caller (keeps sums far from int64 limits).
  static constexpr double kMaxAmount = 1e12;

  ResourceSet() = default;

  // Builds a set from (name, amount) pairs. A negative, NaN, infinite or too
  // large amount, a positive amount below 1/10000, an empty name or a
  // duplicate name yields InvalidArgument naming the resource. Zero amounts
  // are dropped. Amounts are rounded to the nearest 1/10000.
  static StatusOr<ResourceSet> FromMap(
      const std::vector<std::pair<std::string, double>>& amounts);

  // Amount of `name` (0 when absent).
  double Get(const std::string& name) const;
  // Amount of `name` in fixed-point units (0 when absent).
  int64_t GetUnits(const std::string& name) const;

  // Sets `name` to `amount` (0 removes it). Same validation as FromMap; on
  // error the set is unchanged.
  Status Set(const std::string& name, double amount);
  // Sets `name` to an exact fixed-point amount (0 removes it; may be < 0).
  void SetUnits(const std::string& name, int64_t units);

  // this += other, entry by entry.
  void Add(const ResourceSet& other);
  // this -= other if every resulting amount stays >= 0 and returns true;
  // otherwise leaves this unchanged and returns false.
  bool Subtract(const ResourceSet& other);
  // this -= other; amounts may become negative. Only for accounting that
  // must record an overdraft (see LeaseManager::SetBlocked).
  void SubtractAllowingNegative(const ResourceSet& other);

  // True when every amount in this is <= the same amount in other (a
  // resource missing from other counts as 0). The empty set is a subset of
  // every set.
  bool IsSubsetOf(const ResourceSet& other) const;

  bool empty() const { return units_.empty(); }
  size_t size() const { return units_.size(); }

  // "{CPU: 1, GPU: 0.5}", names in sorted order; "{}" when empty.
  std::string ToString() const;
  // (name, amount) pairs in sorted name order.
  std::vector<std::pair<std::string, double>> ToVector() const;

  bool operator==(const ResourceSet& other) const = default;

  // Formats a fixed-point amount exactly: 12345 -> "1.2345", 5000 -> "0.5".
  static std::string FormatUnits(int64_t units);

 private:
  static Status ToUnits(const std::string& name, double amount, int64_t* units);

  std::map<std::string, int64_t> units_;  // never holds a zero value
};

}  // namespace rayts::raylet
