#include "core/raylet/resource_set.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace rayts::raylet {
namespace {

ResourceSet Make(const std::vector<std::pair<std::string, double>>& m) {
  StatusOr<ResourceSet> r = ResourceSet::FromMap(m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : ResourceSet();
}

TEST(ResourceSetTest, TenTenthsOfACpuAddUpToExactlyOne) {
  ResourceSet sum;
  ResourceSet tenth = Make({{"CPU", 0.1}});
  for (int i = 0; i < 10; i++) sum.Add(tenth);
  EXPECT_EQ(sum, Make({{"CPU", 1}}));
  EXPECT_EQ(sum.GetUnits("CPU"), ResourceSet::kUnitsPerWhole);
  EXPECT_EQ(sum.Get("CPU"), 1.0);
  for (int i = 0; i < 10; i++) ASSERT_TRUE(sum.Subtract(tenth));
  EXPECT_TRUE(sum.empty());
}

TEST(ResourceSetTest, PointOnePlusPointTwoIsPointThree) {
  ResourceSet a = Make({{"CPU", 0.1}});
  a.Add(Make({{"CPU", 0.2}}));
  EXPECT_EQ(a, Make({{"CPU", 0.3}}));
}

TEST(ResourceSetTest, FromMapRejectsNegativeAndNamesTheResource) {
  StatusOr<ResourceSet> r = ResourceSet::FromMap({{"CPU", 1}, {"GPU", -1}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("GPU"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("negative"), std::string::npos);
}

TEST(ResourceSetTest, FromMapRejectsNanInfinityTinyEmptyNameAndDuplicates) {
  auto code = [](std::vector<std::pair<std::string, double>> m) {
    return ResourceSet::FromMap(m).status().code();
  };
  EXPECT_EQ(code({{"CPU", std::nan("")}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"CPU", std::numeric_limits<double>::infinity()}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"CPU", 0.00001}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"", 1}}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({{"CPU", 1}, {"CPU", 2}}), StatusCode::kInvalidArgument);
  StatusOr<ResourceSet> nan = ResourceSet::FromMap({{"accel", std::nan("")}});
  EXPECT_NE(nan.status().message().find("accel"), std::string::npos);
}

TEST(ResourceSetTest, ZeroEntriesAreDropped) {
  ResourceSet s = Make({{"CPU", 2}, {"GPU", 0}});
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s, Make({{"CPU", 2}}));
  ASSERT_TRUE(s.Set("CPU", 0).ok());
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(Make({{"GPU", 0}}).empty());
}

TEST(ResourceSetTest, SetValidates) {
  ResourceSet s = Make({{"CPU", 1}});
  EXPECT_EQ(s.Set("CPU", -2).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Get("CPU"), 1.0);
  ASSERT_TRUE(s.Set("GPU", 0.25).ok());
  EXPECT_EQ(s.Get("GPU"), 0.25);
  EXPECT_EQ(s.Get("missing"), 0.0);
}

TEST(ResourceSetTest, IsSubsetOf) {
  ResourceSet node = Make({{"CPU", 2}, {"GPU", 1}});
  EXPECT_TRUE(Make({{"CPU", 1}}).IsSubsetOf(node));
  EXPECT_TRUE(Make({{"CPU", 2}, {"GPU", 1}}).IsSubsetOf(node));
  EXPECT_FALSE(Make({{"CPU", 2.0001}}).IsSubsetOf(node));
  EXPECT_FALSE(Make({{"accel", 1}}).IsSubsetOf(node));
  EXPECT_TRUE(ResourceSet().IsSubsetOf(node));
  EXPECT_TRUE(ResourceSet().IsSubsetOf(ResourceSet()));
  EXPECT_FALSE(node.IsSubsetOf(Make({{"CPU", 2}})));
}

TEST(ResourceSetTest, SubtractThatWouldGoNegativeFailsWithoutChange) {
  ResourceSet s = Make({{"CPU", 1}, {"GPU", 1}});
  EXPECT_FALSE(s.Subtract(Make({{"CPU", 0.5}, {"GPU", 2}})));
  EXPECT_EQ(s, Make({{"CPU", 1}, {"GPU", 1}}));
  EXPECT_FALSE(s.Subtract(Make({{"accel", 1}})));
  EXPECT_TRUE(s.Subtract(Make({{"CPU", 0.5}})));
  EXPECT_EQ(s, Make({{"CPU", 0.5}, {"GPU", 1}}));
}

TEST(ResourceSetTest, SubtractAllowingNegativeOverdraws) {
  ResourceSet s = Make({{"CPU", 1}});
  s.SubtractAllowingNegative(Make({{"CPU", 1.5}}));
  EXPECT_EQ(s.Get("CPU"), -0.5);
  EXPECT_EQ(s.ToString(), "{CPU: -0.5}");
  EXPECT_FALSE(Make({{"CPU", 0.1}}).IsSubsetOf(s));
  s.Add(Make({{"CPU", 0.5}}));
  EXPECT_TRUE(s.empty());
}

TEST(ResourceSetTest, ToStringAndToVector) {
  EXPECT_EQ(Make({{"GPU", 0.5}, {"CPU", 1}}).ToString(), "{CPU: 1, GPU: 0.5}");
  EXPECT_EQ(ResourceSet().ToString(), "{}");
  EXPECT_EQ(Make({{"x", 1.2345}, {"y", 10.05}}).ToString(), "{x: 1.2345, y: 10.05}");
  auto v = Make({{"GPU", 0.5}, {"CPU", 1}}).ToVector();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], (std::pair<std::string, double>{"CPU", 1.0}));
  EXPECT_EQ(v[1], (std::pair<std::string, double>{"GPU", 0.5}));
}

}  // namespace
}  // namespace rayts::raylet
