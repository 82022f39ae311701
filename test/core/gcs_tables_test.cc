#include "core/gcs/gcs_tables.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/common/error_record.h"
#include "core/common/json.h"
#include "test/core/json_reader.h"
#include "test/core/test_util.h"

namespace rayts::gcs {
namespace {

using testing::IsValidJson;
using testing::Json;
using testing::ParseOrFail;


TEST(JsonReaderSelfTest, RejectsMalformed) {
  EXPECT_TRUE(IsValidJson("[{\"a\":1,\"b\":[true,false,null],\"c\":\"x\\n\"}]"));
  EXPECT_FALSE(IsValidJson("[{\"a\":1,}]"));
  EXPECT_FALSE(IsValidJson("{\"a\":\"line\nbreak\"}"));
  EXPECT_FALSE(IsValidJson("{\"a\":inf}"));
  EXPECT_FALSE(IsValidJson("{\"a\":1"));
  EXPECT_FALSE(IsValidJson("{\"a\":\"q\"\"}"));
  EXPECT_FALSE(IsValidJson("[1] x"));
}

// ---- json.h -----------------------------------------------------------

TEST(JsonTextTest, EscapesQuotesBackslashesAndWhitespace) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(JsonString("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(JsonString("l1\nl2\r\tend"), "\"l1\\nl2\\r\\tend\"");
}

TEST(JsonTextTest, EscapesControlCharacters) {
  EXPECT_EQ(JsonString(std::string_view("\x01", 1)), "\"\\u0001\"");
  EXPECT_EQ(JsonString(std::string_view("\x1f", 1)), "\"\\u001f\"");
  EXPECT_EQ(JsonString(std::string_view("\b\f", 2)), "\"\\u0008\\u000c\"");
  EXPECT_EQ(JsonString(std::string_view("a\0b", 3)), "\"a\\u0000b\"");
  // DEL and UTF-8 bytes pass through unchanged.
  EXPECT_EQ(JsonString("\x7f"), "\"\x7f\"");
  EXPECT_EQ(JsonString("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");
}

TEST(JsonTextTest, EveryByteBelow0x80RoundTrips) {
  std::string all;
  for (int c = 0; c < 0x80; c++) all.push_back(static_cast<char>(c));
  std::string doc = "{\"k\":" + JsonString(all) + "}";
  Json j = ParseOrFail(doc);
  ASSERT_EQ(j.type, Json::kObject);
  const Json* k = j.Get("k");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->s, all);
}

TEST(JsonTextTest, ErrorRecordJson) {
  std::string rec = ErrorRecordJson(ErrorKind::kTask, "TypeError", "bad \"value\"\nat line 2");
  Json j = ParseOrFail(rec);
  EXPECT_EQ(j.Keys(), (std::vector<std::string>{"kind", "name", "message"}));
  EXPECT_EQ(j.Get("message")->s, "bad \"value\"\nat line 2");
  Json k = ParseOrFail(ErrorRecordJson(ErrorKind::kObjectLost, "ObjectLost", "m", "ab12"));
  EXPECT_EQ(k.Keys(), (std::vector<std::string>{"kind", "name", "message", "objectId"}));
  EXPECT_EQ(k.Get("objectId")->s, "ab12");
}

// ---- node table ---------------------------------------------------------

using test::MakeNode;

TEST(GcsTablesTest, RegisterNodeSetsStartTime) {
  GcsTables g;
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

TEST(GcsTablesTest, ReRegisterUpdatesInPlace) {
  GcsTables g;
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

TEST(GcsTablesTest, MarkNodeDead) {
  GcsTables g;
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

TEST(GcsTablesTest, ClusterResourcesSumAliveNodesAndReports) {
  GcsTables g;
  EXPECT_TRUE(g.ClusterTotals().empty());
  NodeInfo a = MakeNode("/tmp/a.sock", {{"CPU", 2}, {"GPU", 0}});
  NodeInfo b = MakeNode("/tmp/b.sock", {{"CPU", 4}, {"disk", 1}});
  g.RegisterNode(a);
  g.RegisterNode(b);
  using V = std::vector<std::pair<std::string, double>>;
  EXPECT_EQ(g.ClusterTotals(), (V{{"CPU", 6}, {"disk", 1}}));  // zero totals are not resources
  EXPECT_EQ(g.ClusterAvailable(), (V{{"CPU", 6}, {"disk", 1}}));  // all free until the first report
  ASSERT_TRUE(g.ReportResources(a.node_id, {{"CPU", 0.5}}).ok());
  EXPECT_EQ(g.ClusterAvailable(), (V{{"CPU", 4.5}, {"disk", 1}}));
  ASSERT_TRUE(g.ReportResources(b.node_id, {{"CPU", -1}}).ok());  // overdrawn reads as none free
  EXPECT_EQ(g.ClusterAvailable(), (V{{"CPU", 0.5}, {"disk", 0}}));
  ASSERT_TRUE(g.MarkNodeDead(a.node_id).ok());
  EXPECT_EQ(g.ClusterTotals(), (V{{"CPU", 4}, {"disk", 1}}));
  EXPECT_EQ(g.ClusterAvailable(), (V{{"CPU", 0}, {"disk", 0}}));
  EXPECT_EQ(g.ReportResources(NodeID::FromRandom(), {}).code(), StatusCode::kNotFound);
}

// ---- jobs -------------------------------------------------------------

TEST(GcsTablesTest, JobsGetIncreasingIdsAndFinish) {
  GcsTables g;
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

// ---- KV -------------------------------------------------------------------

TEST(GcsTablesTest, KvPutGetDel) {
  GcsTables g;
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

TEST(GcsTablesTest, KvKeysByPrefix) {
  GcsTables g;
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
