// Comparison of secrets (the cluster's auth token) in time that does not
// depend on where they differ.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace rayts {

// True when a == b. Reads every byte of the longer input whatever the
// content, so the time taken tells nothing but the lengths.
inline bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | (x ^ y);
  }
  return diff == 0;
}

}  // namespace rayts
