// Spilling: PlasmaStore + SpillStore over a real buffer and real files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/plasma/plasma_store.h"
#include "core/plasma/spill_store.h"
#include "test/core/test_util.h"

namespace rayts::plasma {
namespace {

using test::Id;

bool PathExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

constexpr ClientId kOwner = 1;
constexpr ClientId kReader = 2;
constexpr uint64_t kCapacity = 4096;
constexpr uint64_t kSize = 1000;  // 1024 reserved: four fill the store

class SpillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/rayts_spill_test_XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    parent_ = templ;
    memory_.assign(kCapacity, 0);
    store_ = std::make_unique<PlasmaStore>(kCapacity, memory_.data());
  }
  void TearDown() override {
    store_.reset();
    spill_.reset();
    ::rmdir(parent_.c_str());
  }
  void Attach(int64_t limit) {
    auto s = SpillStore::Create(parent_ + "/nested/dir", limit);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    spill_ = std::move(s).value();
    store_->SetSpillStore(spill_.get());
  }
  // Creates, fills with bytes derived from `n`, seals (pinned, as owners do).
  std::vector<uint8_t> Put(uint8_t n, uint64_t size = kSize) {
    auto off = store_->Create(kOwner, Id(n), size, /*pinned=*/true);
    EXPECT_TRUE(off.ok()) << off.status().ToString();
    std::vector<uint8_t> bytes(size);
    std::mt19937 rng(n);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    if (off.ok()) std::copy(bytes.begin(), bytes.end(), memory_.begin() + *off);
    EXPECT_TRUE(store_->Seal(kOwner, Id(n)).ok());
    return bytes;
  }
  GetResult GetNow(ClientId c, uint8_t n) {
    GetResult out;
    int calls = 0;
    EXPECT_EQ(store_->Get(c, {Id(n)}, [&](std::vector<GetResult> r) { calls++; out = r[0]; }), 0u);
    EXPECT_EQ(calls, 1);
    return out;
  }
  std::string Location(uint8_t n) {
    for (const auto& o : store_->ListObjects()) {
      if (o.id == Id(n)) return o.in_memory ? (o.spilled ? "both" : "memory") : "spilled";
    }
    return "absent";
  }

  std::string parent_;
  std::vector<uint8_t> memory_;
  std::unique_ptr<SpillStore> spill_;  // outlives store_ (reset after it)
  std::unique_ptr<PlasmaStore> store_;
};

TEST_F(SpillTest, WithoutSpillStoreAFullStoreFails) {
  for (uint8_t n = 1; n <= 4; n++) Put(n);
  auto off = store_->Create(kOwner, Id(9), kSize, true);
  ASSERT_FALSE(off.ok());
  EXPECT_EQ(off.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(off.status().message().find("spilling to disk is off"), std::string::npos) << off.status().message();
}

TEST_F(SpillTest, SpillPicksOnlySealedPinnedUnreferencedLeastRecentFirst) {
  Attach(1 << 20);
  Put(1);
  Put(2);
  Put(3);
  ASSERT_TRUE(GetNow(kReader, 3).found);  // 3 is mapped for read
  ASSERT_TRUE(store_->Create(kOwner, Id(4), kSize, true).ok());  // 4 is being written
  ASSERT_EQ(store_->used_bytes(), kCapacity);
  GetNow(kReader, 1);  // 1 becomes the most recently used...
  store_->Release(kReader, Id(1));  // ...and unreferenced again

  ASSERT_TRUE(store_->Create(kOwner, Id(5), kSize, true).ok());
  EXPECT_EQ(Location(2), "spilled");  // least recent eligible
  EXPECT_EQ(Location(1), "memory");
  EXPECT_EQ(Location(3), "memory");
  EXPECT_EQ(Location(4), "memory");
  EXPECT_EQ(store_->spill_count(), 1u);
  EXPECT_EQ(store_->spilled_bytes(), kSize);
  EXPECT_TRUE(store_->Contains(Id(2)));

  ASSERT_TRUE(store_->Create(kOwner, Id(6), kSize, true).ok());
  EXPECT_EQ(Location(1), "spilled");
  // Now only referenced or unsealed objects are in memory: nothing to spill.
  auto full = store_->Create(kOwner, Id(7), kSize, true);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(store_->spill_count(), 2u);  // the failed create spilled nothing
  EXPECT_EQ(Location(3), "memory");
  EXPECT_EQ(Location(4), "memory");
}

TEST_F(SpillTest, CreateWithoutSpillFailsAndSpillsNothing) {
  Attach(1 << 20);
  for (uint8_t n = 1; n <= 4; n++) Put(n);
  auto full = store_->Create(kOwner, Id(5), kSize, true, /*allow_spill=*/false);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(store_->spill_count(), 0u);
  EXPECT_TRUE(store_->Create(kOwner, Id(5), kSize, true).ok());  // the retry may spill
  EXPECT_EQ(store_->spill_count(), 1u);
}

TEST_F(SpillTest, RestoreIsByteIdenticalAndKeepsTheDiskCopy) {
  Attach(1 << 20);
  std::vector<std::vector<uint8_t>> want;
  for (uint8_t n = 1; n <= 8; n++) want.push_back(Put(n));  // twice the store
  EXPECT_EQ(store_->spill_count(), 4u);
  for (uint8_t n = 1; n <= 8; n++) {
    GetResult r = GetNow(kReader, n);
    ASSERT_TRUE(r.found) << int(n) << ": " << r.error.ToString();
    ASSERT_EQ(r.size, kSize);
    std::vector<uint8_t> got(memory_.begin() + r.offset, memory_.begin() + r.offset + r.size);
    EXPECT_EQ(got, want[n - 1]) << "object " << int(n);
    store_->Release(kReader, Id(n));
  }
  // 1-4 came back from disk, and 5, spilled to make room for 1; 6-8 never left.
  EXPECT_EQ(store_->restore_count(), 5u);
  EXPECT_EQ(store_->spill_count(), 5u);
  // A restored copy is evictable: reading everything again drops memory
  // copies instead of writing anything.
  for (uint8_t n = 1; n <= 8; n++) {
    GetResult r = GetNow(kReader, n);
    ASSERT_TRUE(r.found);
    std::vector<uint8_t> got(memory_.begin() + r.offset, memory_.begin() + r.offset + r.size);
    EXPECT_EQ(got, want[n - 1]) << "object " << int(n);
    store_->Release(kReader, Id(n));
  }
  EXPECT_EQ(store_->spill_count(), 5u);
  EXPECT_EQ(store_->restore_count(), 10u);
  EXPECT_EQ(store_->num_spilled(), 5u);
  EXPECT_EQ(store_->pinned_bytes(), 3u * 1024);  // 6-8: only their memory copy exists
}

TEST_F(SpillTest, DeleteOfSpilledObjectFreesItsDiskSpace) {
  Attach(1 << 20);
  for (uint8_t n = 1; n <= 5; n++) Put(n);
  ASSERT_EQ(Location(1), "spilled");
  ASSERT_EQ(store_->spilled_bytes(), kSize);
  const std::string file = spill_->dir() + "/" + Id(1).Hex();
  EXPECT_TRUE(PathExists(file));
  store_->Delete(Id(1));
  EXPECT_EQ(store_->spilled_bytes(), 0u);
  EXPECT_EQ(store_->num_spilled(), 0u);
  EXPECT_FALSE(PathExists(file));
  EXPECT_FALSE(store_->Contains(Id(1)));
  EXPECT_EQ(Location(1), "absent");

  // A restored object (memory + disk) that is deleted frees both.
  Put(6);  // memory is still full (1 was on disk only): spills 2
  ASSERT_TRUE(GetNow(kReader, 2).found);  // restores 2 (spills 3)
  EXPECT_EQ(Location(2), "both");
  const uint64_t used = store_->used_bytes();
  EXPECT_EQ(store_->spilled_bytes(), 2 * kSize);
  store_->Delete(Id(2));
  EXPECT_EQ(Location(2), "memory");  // still mapped by the reader; the disk copy is gone at once
  EXPECT_EQ(store_->spilled_bytes(), kSize);
  store_->Release(kReader, Id(2));
  EXPECT_EQ(Location(2), "absent");
  EXPECT_EQ(store_->used_bytes(), used - 1024);
  EXPECT_EQ(store_->spilled_bytes(), kSize);  // only 3 is left on disk
}

TEST_F(SpillTest, DiskLimitIsRespectedAndTheErrorCarriesBothNumbers) {
  Attach(1500);  // room for one spilled object
  for (uint8_t n = 1; n <= 5; n++) Put(n);
  EXPECT_EQ(store_->spilled_bytes(), kSize);
  auto full = store_->Create(kOwner, Id(6), 900, true);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kOutOfMemory);
  const std::string& m = full.status().message();
  EXPECT_NE(m.find("of 900 bytes"), std::string::npos) << m;
  EXPECT_NE(m.find("object store 4096 of 4096 bytes used"), std::string::npos) << m;
  EXPECT_NE(m.find("spill disk 1000 of 1500 bytes used"), std::string::npos) << m;
  EXPECT_EQ(store_->spilled_bytes(), kSize);  // never past the limit
  EXPECT_EQ(spill_->num_files(), 1u);
}

TEST_F(SpillTest, ZeroLimitSpillsNothing) {
  Attach(0);
  for (uint8_t n = 1; n <= 4; n++) Put(n);
  auto full = store_->Create(kOwner, Id(5), kSize, true);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("spill disk 0 of 0 bytes used"), std::string::npos) << full.status().message();
}

TEST_F(SpillTest, RestoreWithoutRoomAnswersNotFoundWithTheReason) {
  Attach(1 << 20);
  for (uint8_t n = 1; n <= 5; n++) Put(n);  // 1 spilled
  for (uint8_t n = 2; n <= 5; n++) ASSERT_TRUE(GetNow(kReader, n).found);  // all mapped
  GetResult r = GetNow(kReader, 1);
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.error.code(), StatusCode::kOutOfMemory);
  EXPECT_NE(r.error.message().find("cannot restore spilled object"), std::string::npos) << r.error.message();
  EXPECT_EQ(Location(1), "spilled");
  store_->Release(kReader, Id(5));  // room again: the next get restores
  EXPECT_TRUE(GetNow(kReader, 1).found);
  EXPECT_EQ(store_->restore_count(), 1u);
}

TEST_F(SpillTest, SpillDirectoryIsRemovedWithTheStore) {
  Attach(1 << 20);
  for (uint8_t n = 1; n <= 6; n++) Put(n);
  const std::string dir = spill_->dir();
  EXPECT_TRUE(PathExists(dir));
  EXPECT_EQ(spill_->num_files(), 2u);
  store_.reset();
  spill_.reset();
  EXPECT_FALSE(PathExists(dir));
  ::rmdir((parent_ + "/nested/dir").c_str());
  ::rmdir((parent_ + "/nested").c_str());
}

TEST(SpillStoreTest, DefaultLimitIsFreeSpaceMinusAMargin) {
  char templ[] = "/tmp/rayts_spill_test_XXXXXX";
  ASSERT_NE(::mkdtemp(templ), nullptr);
  {
    auto s = SpillStore::Create(templ, -1);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_GT((*s)->limit_bytes(), 0u);
    std::vector<uint8_t> data(100, 7), back(100, 0);
    ASSERT_TRUE((*s)->Write(Id(1), data.data(), data.size()).ok());
    EXPECT_EQ((*s)->Write(Id(1), data.data(), data.size()).code(), StatusCode::kAlreadyExists);
    ASSERT_TRUE((*s)->Read(Id(1), back.data(), back.size()).ok());
    EXPECT_EQ(back, data);
    EXPECT_EQ((*s)->Read(Id(2), back.data(), back.size()).code(), StatusCode::kNotFound);
  }
  EXPECT_EQ(::rmdir(templ), 0);  // empty again: the store removed its directory
}

}  // namespace
}  // namespace rayts::plasma
