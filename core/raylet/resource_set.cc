#include "core/raylet/resource_set.h"

#include <cmath>
#include <set>

namespace rayts::raylet {

Status ResourceSet::ToUnits(const std::string& name, double amount, int64_t* units) {
  if (name.empty()) return Status::InvalidArgument("resource name must not be empty");
  if (std::isnan(amount)) {
    return Status::InvalidArgument("resource '" + name + "' has amount NaN");
  }
  if (amount < 0) {
    return Status::InvalidArgument("resource '" + name + "' has negative amount " +
                                   std::to_string(amount));
  }
  if (!(amount <= kMaxAmount)) {  // also catches +inf
    return Status::InvalidArgument("resource '" + name + "' amount " + std::to_string(amount) +
                                   " exceeds the maximum 1e12");
  }
  int64_t u = std::llround(amount * static_cast<double>(kUnitsPerWhole));
  if (u == 0 && amount > 0) {
    return Status::InvalidArgument("resource '" + name + "' amount " + std::to_string(amount) +
                                   " is below the resolution 0.0001");
  }
  *units = u;
  return Status::OK();
}

StatusOr<ResourceSet> ResourceSet::FromMap(
    const std::vector<std::pair<std::string, double>>& amounts) {
  ResourceSet set;
  std::set<std::string> seen;
  for (const auto& [name, amount] : amounts) {
    int64_t u = 0;
    RAYTS_RETURN_IF_ERROR(ToUnits(name, amount, &u));
    if (!seen.insert(name).second) {
      return Status::InvalidArgument("resource '" + name + "' is given more than once");
    }
    set.SetUnits(name, u);
  }
  return set;
}

double ResourceSet::Get(const std::string& name) const {
  return static_cast<double>(GetUnits(name)) / static_cast<double>(kUnitsPerWhole);
}

int64_t ResourceSet::GetUnits(const std::string& name) const {
  auto it = units_.find(name);
  return it == units_.end() ? 0 : it->second;
}

Status ResourceSet::Set(const std::string& name, double amount) {
  int64_t u = 0;
  RAYTS_RETURN_IF_ERROR(ToUnits(name, amount, &u));
  SetUnits(name, u);
  return Status::OK();
}

void ResourceSet::SetUnits(const std::string& name, int64_t units) {
  if (units == 0) {
    units_.erase(name);
  } else {
    units_[name] = units;
  }
}

void ResourceSet::Add(const ResourceSet& other) {
  for (const auto& [name, u] : other.units_) SetUnits(name, GetUnits(name) + u);
}

bool ResourceSet::Subtract(const ResourceSet& other) {
  for (const auto& [name, u] : other.units_) {
    if (GetUnits(name) - u < 0) return false;
  }
  SubtractAllowingNegative(other);
  return true;
}

void ResourceSet::SubtractAllowingNegative(const ResourceSet& other) {
  for (const auto& [name, u] : other.units_) SetUnits(name, GetUnits(name) - u);
}

bool ResourceSet::IsSubsetOf(const ResourceSet& other) const {
  for (const auto& [name, u] : units_) {
    if (u > other.GetUnits(name)) return false;
  }
  return true;
}

std::string ResourceSet::FormatUnits(int64_t units) {
  std::string out;
  // Negate in unsigned arithmetic so INT64_MIN cannot overflow.
  uint64_t mag = units < 0 ? 0 - static_cast<uint64_t>(units) : static_cast<uint64_t>(units);
  if (units < 0) out += '-';
  out += std::to_string(mag / kUnitsPerWhole);
  uint64_t frac = mag % kUnitsPerWhole;
  if (frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 4 - digits.size(), '0');  // kUnitsPerWhole has 4 decimals
    while (digits.back() == '0') digits.pop_back();
    out += '.';
    out += digits;
  }
  return out;
}

std::string ResourceSet::ToString() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, u] : units_) {
    if (!first) out += ", ";
    first = false;
    out += name;
    out += ": ";
    out += FormatUnits(u);
  }
  out += "}";
  return out;
}

std::vector<std::pair<std::string, double>> ResourceSet::ToVector() const {
  std::vector<std::pair<std::string, double>> out;
  out.reserve(units_.size());
  for (const auto& [name, u] : units_) {
    out.emplace_back(name, static_cast<double>(u) / static_cast<double>(kUnitsPerWhole));
  }
  return out;
}

}  // namespace rayts::raylet
