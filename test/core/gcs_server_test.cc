#include "core/gcs/gcs_server.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/common/json.h"

namespace rayts::gcs {
namespace {

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

Json ParseOrFail(const std::string& text) {
  Json j;
  JsonReader r(text);
  EXPECT_TRUE(r.Parse(&j)) << r.error() << " in: " << text;
  return j;
}

bool IsValidJson(const std::string& text) {
  Json j;
  return JsonReader(text).Parse(&j);
}

TEST(GcsServerJsonReaderSelfTest, RejectsMalformed) {
  EXPECT_TRUE(IsValidJson("[{\"a\":1,\"b\":[true,false,null],\"c\":\"x\\n\"}]"));
  EXPECT_FALSE(IsValidJson("[{\"a\":1,}]"));
  EXPECT_FALSE(IsValidJson("{\"a\":\"line\nbreak\"}"));
  EXPECT_FALSE(IsValidJson("{\"a\":inf}"));
  EXPECT_FALSE(IsValidJson("{\"a\":1"));
  EXPECT_FALSE(IsValidJson("{\"a\":\"q\"\"}"));
  EXPECT_FALSE(IsValidJson("[1] x"));
}

// ---- json.h -----------------------------------------------------------

TEST(GcsServerJsonTest, EscapesQuotesBackslashesAndWhitespace) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(JsonString("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(JsonString("l1\nl2\r\tend"), "\"l1\\nl2\\r\\tend\"");
}

TEST(GcsServerJsonTest, EscapesControlCharacters) {
  EXPECT_EQ(JsonString(std::string_view("\x01", 1)), "\"\\u0001\"");
  EXPECT_EQ(JsonString(std::string_view("\x1f", 1)), "\"\\u001f\"");
  EXPECT_EQ(JsonString(std::string_view("\b\f", 2)), "\"\\u0008\\u000c\"");
  EXPECT_EQ(JsonString(std::string_view("a\0b", 3)), "\"a\\u0000b\"");
  // DEL and UTF-8 bytes pass through unchanged.
  EXPECT_EQ(JsonString("\x7f"), "\"\x7f\"");
  EXPECT_EQ(JsonString("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");
}

TEST(GcsServerJsonTest, EveryByteBelow0x80RoundTrips) {
  std::string all;
  for (int c = 0; c < 0x80; c++) all.push_back(static_cast<char>(c));
  std::string doc = "{\"k\":" + JsonString(all) + "}";
  Json j = ParseOrFail(doc);
  ASSERT_EQ(j.type, Json::kObject);
  const Json* k = j.Get("k");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->s, all);
}

TEST(GcsServerJsonTest, ErrorRecordJson) {
  std::string rec = ErrorRecordJson("task", "TypeError", "bad \"value\"\nat line 2");
  Json j = ParseOrFail(rec);
  EXPECT_EQ(j.Keys(), (std::vector<std::string>{"kind", "name", "message"}));
  EXPECT_EQ(j.Get("message")->s, "bad \"value\"\nat line 2");
  Json k = ParseOrFail(ErrorRecordJson("lost", "ObjectLost", "m", "ab12"));
  EXPECT_EQ(k.Keys(), (std::vector<std::string>{"kind", "name", "message", "objectId"}));
  EXPECT_EQ(k.Get("objectId")->s, "ab12");
}

TEST(GcsServerJsonTest, ResourcesJson) {
  EXPECT_EQ(ResourcesJson({}), "{}");
  Json j = ParseOrFail(ResourcesJson({{"CPU", 4}, {"memory", 1.5e9}, {"custom\"x", 0.25}}));
  ASSERT_EQ(j.type, Json::kObject);
  EXPECT_EQ(j.Keys(), (std::vector<std::string>{"CPU", "memory", "custom\"x"}));
  EXPECT_DOUBLE_EQ(j.Get("CPU")->n, 4);
  EXPECT_DOUBLE_EQ(j.Get("memory")->n, 1.5e9);
  EXPECT_DOUBLE_EQ(j.Get("custom\"x")->n, 0.25);
}

// ---- node table ---------------------------------------------------------

NodeInfo MakeNode(const std::string& address, std::vector<std::pair<std::string, double>> res = {{"CPU", 2}}) {
  NodeInfo n;
  n.node_id = NodeID::FromRandom();
  n.address = address;
  n.resources = std::move(res);
  return n;
}

TEST(GcsServerTest, RegisterNodeSetsStartTime) {
  GcsServer g;
  NodeInfo n = MakeNode("/tmp/a.sock");
  g.RegisterNode(n);
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.nodes()[0].node_id, n.node_id);
  EXPECT_EQ(g.nodes()[0].address, "/tmp/a.sock");
  EXPECT_TRUE(g.nodes()[0].alive);
  EXPECT_GT(g.nodes()[0].start_time_ms, 0);
  NodeInfo m = MakeNode("/tmp/b.sock");
  m.start_time_ms = 1234;
  g.RegisterNode(m);
  ASSERT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(g.nodes()[1].start_time_ms, 1234);
}

TEST(GcsServerTest, ReRegisterUpdatesInPlace) {
  GcsServer g;
  NodeInfo a = MakeNode("/tmp/a.sock");
  NodeInfo b = MakeNode("/tmp/b.sock");
  g.RegisterNode(a);
  g.RegisterNode(b);
  ASSERT_TRUE(g.MarkNodeDead(a.node_id).ok());
  NodeInfo a2 = a;
  a2.address = "/tmp/a2.sock";
  a2.alive = true;
  a2.resources = {{"CPU", 8}, {"GPU", 1}};
  g.RegisterNode(a2);
  ASSERT_EQ(g.nodes().size(), 2u);
  EXPECT_EQ(g.nodes()[0].node_id, a.node_id);
  EXPECT_EQ(g.nodes()[0].address, "/tmp/a2.sock");
  EXPECT_TRUE(g.nodes()[0].alive);
  EXPECT_EQ(g.nodes()[0].resources.size(), 2u);
  EXPECT_EQ(g.nodes()[1].address, "/tmp/b.sock");
}

TEST(GcsServerTest, MarkNodeDead) {
  GcsServer g;
  NodeInfo a = MakeNode("/tmp/a.sock");
  NodeInfo b = MakeNode("/tmp/b.sock");
  g.RegisterNode(a);
  g.RegisterNode(b);
  ASSERT_TRUE(g.MarkNodeDead(b.node_id).ok());
  EXPECT_TRUE(g.nodes()[0].alive);
  EXPECT_FALSE(g.nodes()[1].alive);
  EXPECT_TRUE(g.MarkNodeDead(b.node_id).ok());  // idempotent
  Status s = g.MarkNodeDead(NodeID::FromRandom());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(g.nodes().size(), 2u);
}

TEST(GcsServerTest, NodesJsonIsValidAndComplete) {
  GcsServer g;
  EXPECT_EQ(g.NodesJson(), "[]");
  ParseOrFail(g.NodesJson());
  NodeInfo a = MakeNode("/tmp/plain.sock", {{"CPU", 4}, {"memory", 2147483648.0}});
  a.start_time_ms = 1700000000123;
  NodeInfo b = MakeNode("/tmp/we\"ird\\path\nwith\x01" "ctl", {{"CPU", 0.5}, {"custom \"r\"", 3}});
  NodeInfo c = MakeNode("", {});
  g.RegisterNode(a);
  g.RegisterNode(b);
  g.RegisterNode(c);
  ASSERT_TRUE(g.MarkNodeDead(b.node_id).ok());

  std::string text = g.NodesJson();
  Json j = ParseOrFail(text);
  ASSERT_EQ(j.type, Json::kArray);
  ASSERT_EQ(j.arr.size(), 3u);
  const std::vector<std::string> keys = {"nodeId", "alive", "address", "resources", "startTimeMs"};
  const NodeInfo* want[] = {&a, &b, &c};
  for (size_t i = 0; i < 3; i++) {
    const Json& n = j.arr[i];
    ASSERT_EQ(n.type, Json::kObject);
    EXPECT_EQ(n.Keys(), keys);
    EXPECT_EQ(n.Get("nodeId")->s, want[i]->node_id.Hex());
    EXPECT_EQ(n.Get("nodeId")->s.size(), 32u);
    EXPECT_EQ(n.Get("address")->s, want[i]->address);
    EXPECT_EQ(n.Get("alive")->type, Json::kBool);
    EXPECT_EQ(n.Get("alive")->b, i != 1);
    EXPECT_EQ(n.Get("resources")->type, Json::kObject);
    EXPECT_EQ(n.Get("resources")->obj.size(), want[i]->resources.size());
    EXPECT_EQ(n.Get("startTimeMs")->type, Json::kNumber);
  }
  EXPECT_DOUBLE_EQ(j.arr[0].Get("resources")->Get("memory")->n, 2147483648.0);
  EXPECT_DOUBLE_EQ(j.arr[0].Get("startTimeMs")->n, 1700000000123.0);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("resources")->Get("custom \"r\"")->n, 3);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("resources")->Get("CPU")->n, 0.5);
}

// ---- jobs -------------------------------------------------------------

TEST(GcsServerTest, JobsGetIncreasingIdsAndFinish) {
  GcsServer g;
  JobID j1 = g.AddJob(100, "default");
  JobID j2 = g.AddJob(200, "ns2");
  EXPECT_NE(j1, 0u);
  EXPECT_EQ(j2, j1 + 1);
  ASSERT_EQ(g.jobs().size(), 2u);
  EXPECT_EQ(g.jobs().at(j1).driver_pid, 100);
  EXPECT_EQ(g.jobs().at(j2).namespace_, "ns2");
  EXPECT_TRUE(g.jobs().at(j1).alive);
  EXPECT_GT(g.jobs().at(j1).start_time_ms, 0);
  ASSERT_TRUE(g.MarkJobFinished(j1).ok());
  EXPECT_FALSE(g.jobs().at(j1).alive);
  EXPECT_TRUE(g.jobs().at(j2).alive);
  EXPECT_EQ(g.MarkJobFinished(9999).code(), StatusCode::kNotFound);
}

TEST(GcsServerTest, JobsJsonIsValid) {
  GcsServer g;
  EXPECT_EQ(g.JobsJson(), "[]");
  JobID a = g.AddJob(11, "plain");
  JobID b = g.AddJob(22, "quote\" back\\ nl\n tab\t ctl\x02");
  ASSERT_TRUE(g.MarkJobFinished(a).ok());
  Json j = ParseOrFail(g.JobsJson());
  ASSERT_EQ(j.type, Json::kArray);
  ASSERT_EQ(j.arr.size(), 2u);
  for (auto& job : j.arr) {
    EXPECT_EQ(job.Keys(), (std::vector<std::string>{"jobId", "driverPid", "alive", "namespace"}));
  }
  EXPECT_DOUBLE_EQ(j.arr[0].Get("jobId")->n, a);
  EXPECT_FALSE(j.arr[0].Get("alive")->b);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("jobId")->n, b);
  EXPECT_DOUBLE_EQ(j.arr[1].Get("driverPid")->n, 22);
  EXPECT_TRUE(j.arr[1].Get("alive")->b);
  EXPECT_EQ(j.arr[1].Get("namespace")->s, "quote\" back\\ nl\n tab\t ctl\x02");
}

// ---- KV -------------------------------------------------------------------

TEST(GcsServerTest, KvPutGetDel) {
  GcsServer g;
  EXPECT_EQ(g.KvGet("missing").status().code(), StatusCode::kNotFound);
  g.KvPut("k", "v1");
  auto v = g.KvGet("k");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "v1");
  g.KvPut("k", "v2");  // overwrite
  EXPECT_EQ(*g.KvGet("k"), "v2");
  std::string binary("a\0b\xff", 4);
  g.KvPut("bin", binary);
  EXPECT_EQ(*g.KvGet("bin"), binary);
  g.KvPut("", "empty key");
  EXPECT_EQ(*g.KvGet(""), "empty key");
  EXPECT_TRUE(g.KvDel("k"));
  EXPECT_FALSE(g.KvDel("k"));
  EXPECT_EQ(g.KvGet("k").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*g.KvGet("bin"), binary);
}

TEST(GcsServerTest, KvKeysByPrefix) {
  GcsServer g;
  for (const char* k : {"fn:a", "fn:b", "fn:", "fn", "fo", "actor:x", "f", "fn:b:c", "g"}) g.KvPut(k, "v");
  using V = std::vector<std::string>;
  EXPECT_EQ(g.KvKeys("fn:"), (V{"fn:", "fn:a", "fn:b", "fn:b:c"}));
  EXPECT_EQ(g.KvKeys("fn"), (V{"fn", "fn:", "fn:a", "fn:b", "fn:b:c"}));
  EXPECT_EQ(g.KvKeys("f"), (V{"f", "fn", "fn:", "fn:a", "fn:b", "fn:b:c", "fo"}));
  EXPECT_EQ(g.KvKeys("fn:b"), (V{"fn:b", "fn:b:c"}));
  EXPECT_EQ(g.KvKeys("actor:"), (V{"actor:x"}));
  EXPECT_EQ(g.KvKeys("zzz"), V{});
  EXPECT_EQ(g.KvKeys("fn:c"), V{});
  EXPECT_EQ(g.KvKeys("").size(), 9u);
  g.KvDel("fn:a");
  EXPECT_EQ(g.KvKeys("fn:"), (V{"fn:", "fn:b", "fn:b:c"}));
}

}  // namespace
}  // namespace rayts::gcs
