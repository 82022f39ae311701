// A strict little JSON reader for tests: checks that what core/ writes is
// valid JSON (core/ itself only writes JSON, see core/common/json.h).
// Thread safety: pure functions and values.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rayts::testing {

// ---- A strict little JSON reader, for checking what core/ writes. -------

struct Json {
  enum Type { kNull, kBool, kNumber, kString, kArray, kObject } type = kNull;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // keeps order and duplicates

  const Json* Get(const std::string& key) const {
    for (auto& [k, v] : obj) if (k == key) return &v;
    return nullptr;
  }
  std::vector<std::string> Keys() const {
    std::vector<std::string> out;
    for (auto& [k, v] : obj) out.push_back(k);
    return out;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : t_(text) {}
  // Parses the whole text; returns false (with error()) on any deviation.
  bool Parse(Json* out) {
    Ws();
    if (!Value(out, 0)) return false;
    Ws();
    if (p_ != t_.size()) return Fail("trailing characters");
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  bool Fail(const std::string& why) {
    if (err_.empty()) err_ = why + " at offset " + std::to_string(p_);
    return false;
  }
  void Ws() { while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t')) p_++; }
  bool Lit(std::string_view w) {
    if (t_.substr(p_, w.size()) != w) return Fail("bad literal");
    p_ += w.size();
    return true;
  }
  bool Value(Json* v, int depth) {
    if (depth > 64) return Fail("too deep");
    if (p_ >= t_.size()) return Fail("unexpected end");
    char c = t_[p_];
    if (c == '{') return Object(v, depth);
    if (c == '[') return Array(v, depth);
    if (c == '"') { v->type = Json::kString; return String(&v->s); }
    if (c == 't') { v->type = Json::kBool; v->b = true; return Lit("true"); }
    if (c == 'f') { v->type = Json::kBool; v->b = false; return Lit("false"); }
    if (c == 'n') { v->type = Json::kNull; return Lit("null"); }
    if (c == '-' || (c >= '0' && c <= '9')) return Number(v);
    return Fail(std::string("unexpected character '") + c + "'");
  }
  bool Object(Json* v, int depth) {
    v->type = Json::kObject;
    p_++;
    Ws();
    if (p_ < t_.size() && t_[p_] == '}') { p_++; return true; }
    for (;;) {
      Ws();
      if (p_ >= t_.size() || t_[p_] != '"') return Fail("expected key");
      std::string key;
      if (!String(&key)) return false;
      Ws();
      if (p_ >= t_.size() || t_[p_] != ':') return Fail("expected ':'");
      p_++;
      Ws();
      Json val;
      if (!Value(&val, depth + 1)) return false;
      v->obj.emplace_back(std::move(key), std::move(val));
      Ws();
      if (p_ >= t_.size()) return Fail("unterminated object");
      if (t_[p_] == ',') { p_++; continue; }
      if (t_[p_] == '}') { p_++; return true; }
      return Fail("expected ',' or '}'");
    }
  }
  bool Array(Json* v, int depth) {
    v->type = Json::kArray;
    p_++;
    Ws();
    if (p_ < t_.size() && t_[p_] == ']') { p_++; return true; }
    for (;;) {
      Ws();
      Json val;
      if (!Value(&val, depth + 1)) return false;
      v->arr.push_back(std::move(val));
      Ws();
      if (p_ >= t_.size()) return Fail("unterminated array");
      if (t_[p_] == ',') { p_++; continue; }
      if (t_[p_] == ']') { p_++; return true; }
      return Fail("expected ',' or ']'");
    }
  }
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool String(std::string* out) {
    p_++;  // opening quote
    while (p_ < t_.size()) {
      unsigned char c = static_cast<unsigned char>(t_[p_++]);
      if (c == '"') return true;
      if (c < 0x20) return Fail("raw control character in string");
      if (c != '\\') { out->push_back(static_cast<char>(c)); continue; }
      if (p_ >= t_.size()) break;
      char e = t_[p_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          if (p_ + 4 > t_.size()) return Fail("short \\u escape");
          int cp = 0;
          for (int i = 0; i < 4; i++) {
            int h = Hex(t_[p_++]);
            if (h < 0) return Fail("bad hex in \\u escape");
            cp = cp * 16 + h;
          }
          // Only what these tests need: code points below 0x80.
          if (cp >= 0x80) return Fail("\\u escape above 0x7f not expected here");
          out->push_back(static_cast<char>(cp));
          break;
        }
        default:
          return Fail(std::string("bad escape \\") + e);
      }
    }
    return Fail("unterminated string");
  }
  bool Number(Json* v) {
    size_t start = p_;
    if (t_[p_] == '-') p_++;
    if (p_ >= t_.size()) return Fail("bad number");
    if (t_[p_] == '0') {
      p_++;
    } else if (t_[p_] >= '1' && t_[p_] <= '9') {
      while (p_ < t_.size() && isdigit(static_cast<unsigned char>(t_[p_]))) p_++;
    } else {
      return Fail("bad number");
    }
    if (p_ < t_.size() && t_[p_] == '.') {
      p_++;
      if (p_ >= t_.size() || !isdigit(static_cast<unsigned char>(t_[p_]))) return Fail("bad fraction");
      while (p_ < t_.size() && isdigit(static_cast<unsigned char>(t_[p_]))) p_++;
    }
    if (p_ < t_.size() && (t_[p_] == 'e' || t_[p_] == 'E')) {
      p_++;
      if (p_ < t_.size() && (t_[p_] == '+' || t_[p_] == '-')) p_++;
      if (p_ >= t_.size() || !isdigit(static_cast<unsigned char>(t_[p_]))) return Fail("bad exponent");
      while (p_ < t_.size() && isdigit(static_cast<unsigned char>(t_[p_]))) p_++;
    }
    v->type = Json::kNumber;
    v->n = std::strtod(std::string(t_.substr(start, p_ - start)).c_str(), nullptr);
    return true;
  }

  std::string_view t_;
  size_t p_ = 0;
  std::string err_;
};

inline Json ParseOrFail(const std::string& text) {
  Json j;
  JsonReader r(text);
  EXPECT_TRUE(r.Parse(&j)) << r.error() << " in: " << text;
  return j;
}

inline bool IsValidJson(const std::string& text) {
  Json j;
  return JsonReader(text).Parse(&j);
}

}  // namespace rayts::testing
