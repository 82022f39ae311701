// Dependency records (error_record.h): a task whose argument holds a task
// error fails with a record naming it whose cause is the upstream record;
// chains nest up to kMaxDependencyNesting, then restart from their first
// error with the count of tasks in between; a record written by the
// executor in the same shape is read the same way.
#include <gtest/gtest.h>

#include <string>

#include "core/common/error_record.h"

namespace rayts {
namespace {

const std::string kRoot = R"({"kind":"task","name":"RangeError","message":"bad","taskName":"f","stack":"RangeError: bad"})";
const std::string kPrefix =
    R"({"kind":"task","name":"RayTaskError","message":"a result it depends on failed","dependency":)";

TEST(ErrorRecordTest, KindIsReadFromThePrefix) {
  EXPECT_TRUE(IsTaskErrorRecord(kRoot));
  EXPECT_TRUE(IsTaskErrorRecord(ErrorRecordJson(ErrorKind::kTask, "TypeError", "x")));
  EXPECT_FALSE(IsTaskErrorRecord(ErrorRecordJson(ErrorKind::kCancelled, "TaskCancelledError", "x")));
  EXPECT_FALSE(IsTaskErrorRecord("{}"));
}

TEST(ErrorRecordTest, DependencyNestsTheUpstreamRecord) {
  std::string g = DependencyErrorJson("g", kRoot);
  EXPECT_EQ(g, kPrefix + R"(1,"taskName":"g","cause":)" + kRoot + "}");
  std::string h = DependencyErrorJson("h", g);
  EXPECT_EQ(h, kPrefix + R"(1,"taskName":"h","cause":)" + g + "}");
  int64_t n = 0;
  std::string_view cause;
  ASSERT_TRUE(ParseDependencyRecord(h, &n, &cause));
  EXPECT_EQ(n, 1);
  EXPECT_EQ(cause, g);
  ASSERT_TRUE(ParseDependencyRecord(cause, &n, &cause));
  EXPECT_EQ(cause, kRoot);
  EXPECT_FALSE(ParseDependencyRecord(kRoot, &n, &cause));
}

TEST(ErrorRecordTest, TaskNamesWithQuotesAndTheCauseKeyDoNotConfuseTheReader) {
  std::string tricky = DependencyErrorJson(R"(a,"cause":{"x)", kRoot);
  int64_t n = 0;
  std::string_view cause;
  ASSERT_TRUE(ParseDependencyRecord(tricky, &n, &cause));
  EXPECT_EQ(cause, kRoot);
}

TEST(ErrorRecordTest, AChainDeeperThanTheCapRestartsFromItsFirstError) {
  std::string rec = kRoot;
  for (int i = 0; i < kMaxDependencyNesting + 5; i++) rec = DependencyErrorJson("t" + std::to_string(i), rec);
  // At most kMaxDependencyNesting records deep, ending at the root, every task counted.
  const DependencyChain chain = WalkDependencies(rec);
  EXPECT_EQ(chain.root, kRoot);
  EXPECT_LE(chain.depth, kMaxDependencyNesting);
  EXPECT_EQ(chain.tasks, kMaxDependencyNesting + 5);
  EXPECT_LT(rec.size(), static_cast<size_t>(kMaxDependencyNesting + 1) * 200 + kRoot.size());
}

}  // namespace
}  // namespace rayts
