// Minimal JSON text helpers for control-plane payloads (error records,
// query replies for JavaScript). Not a parser: core/ only produces JSON; TypeScript reads it.
// Thread safety: pure functions.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace rayts {

inline void JsonEscapeTo(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

inline std::string JsonString(std::string_view s) {
  std::string out;
  JsonEscapeTo(&out, s);
  return out;
}

}  // namespace rayts
