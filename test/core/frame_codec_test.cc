#include "core/protocol/frame_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/protocol/connection.h"

namespace rayts {
namespace {

using Bytes = std::vector<uint8_t>;

// A GcsRequest carrying a KvPutRequest: `method` as the key, `body` as the value.
Bytes GcsRequestFrame(uint64_t request_id, const std::string& method, const std::string& body) {
  flatbuffers::FlatBufferBuilder fbb;
  auto m = fbb.CreateString(method);
  auto b = fbb.CreateVector(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  auto kv = proto::CreateKvPutRequest(fbb, m, b);
  auto req = proto::CreateGcsRequest(fbb, request_id, proto::GcsRequestBody::KvPutRequest, kv.Union());
  auto buf = FinishFrame(fbb, req);
  return Bytes(buf.data(), buf.data() + buf.size());
}

uint32_t PrefixOf(const Bytes& frame) {
  uint32_t len;
  std::memcpy(&len, frame.data(), 4);
  return len;
}

// A valid frame with `extra` trailing bytes after the Envelope (the length
// prefix grows to match), so the frame that follows it starts at an odd
// offset in the stream.
Bytes PaddedFrame(uint64_t request_id, size_t extra) {
  Bytes f = GcsRequestFrame(request_id, "pad", "x");
  uint32_t len = PrefixOf(f) + static_cast<uint32_t>(extra);
  std::memcpy(f.data(), &len, 4);
  f.insert(f.end(), extra, 0xEE);
  return f;
}

Bytes LengthOnly(uint32_t len) {
  Bytes b(4);
  std::memcpy(b.data(), &len, 4);
  return b;
}

struct Decoded {
  uint64_t request_id;
  std::string method;
  std::string body;
};

// Copies out the fields: the envelope is only valid until the next call.
Decoded Copy(const proto::Envelope* env) {
  EXPECT_EQ(env->body_type(), proto::Body::GcsRequest);
  auto* r = env->body_as_GcsRequest();
  EXPECT_NE(r, nullptr);
  if (!r) return {};
  auto* kv = r->body_as_KvPutRequest();
  EXPECT_NE(kv, nullptr);
  if (!kv) return {};
  auto* v = kv->value();
  return {r->request_id(), kv->key() ? kv->key()->str() : "",
          v ? std::string(reinterpret_cast<const char*>(v->data()), v->size()) : ""};
}

TEST(FrameCodecTest, FinishFrameProducesLengthPrefix) {
  Bytes f = GcsRequestFrame(7, "kv_get", "key");
  ASSERT_GE(f.size(), 8u);
  EXPECT_EQ(PrefixOf(f) + 4u, f.size());
  const proto::Envelope* env = nullptr;
  // VerifyEnvelope wants 8-byte aligned input.
  std::vector<uint64_t> aligned((f.size() + 7) / 8);
  std::memcpy(aligned.data(), f.data(), f.size());
  Status s = VerifyEnvelope(reinterpret_cast<const uint8_t*>(aligned.data()), f.size(), &env);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(Copy(env).request_id, 7u);
}

TEST(FrameCodecTest, WholeFrameDecodesOnce) {
  Bytes f = GcsRequestFrame(42, "kv_put", "hello");
  FrameDecoder d;
  d.Feed(f.data(), f.size());
  EXPECT_EQ(d.buffered(), f.size());
  const proto::Envelope* env = nullptr;
  ASSERT_TRUE(d.Next(&env).ok());
  ASSERT_NE(env, nullptr);
  Decoded got = Copy(env);
  EXPECT_EQ(got.request_id, 42u);
  EXPECT_EQ(got.method, "kv_put");
  EXPECT_EQ(got.body, "hello");
  EXPECT_EQ(d.buffered(), 0u);
  env = reinterpret_cast<const proto::Envelope*>(1);
  ASSERT_TRUE(d.Next(&env).ok());
  EXPECT_EQ(env, nullptr);
}

TEST(FrameCodecTest, EmptyDecoderNeedsMore) {
  FrameDecoder d;
  const proto::Envelope* env = reinterpret_cast<const proto::Envelope*>(1);
  ASSERT_TRUE(d.Next(&env).ok());
  EXPECT_EQ(env, nullptr);
}

TEST(FrameCodecTest, ByteByByteWaitsForWholeFrame) {
  Bytes stream;
  for (uint64_t i = 0; i < 3; i++) {
    Bytes f = GcsRequestFrame(100 + i, "m" + std::to_string(i), std::string(i * 5 + 1, 'a' + i));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  FrameDecoder d;
  std::vector<Decoded> got;
  size_t frames_at_byte_boundary = 0;
  for (size_t i = 0; i < stream.size(); i++) {
    d.Feed(&stream[i], 1);
    const proto::Envelope* env = nullptr;
    Status s = d.Next(&env);
    ASSERT_TRUE(s.ok()) << "at byte " << i << ": " << s.ToString();
    if (env) {
      got.push_back(Copy(env));
      frames_at_byte_boundary++;
      // A second call right away has nothing.
      ASSERT_TRUE(d.Next(&env).ok());
      EXPECT_EQ(env, nullptr);
    }
  }
  ASSERT_EQ(got.size(), 3u);
  for (uint64_t i = 0; i < 3; i++) {
    EXPECT_EQ(got[i].request_id, 100 + i);
    EXPECT_EQ(got[i].method, "m" + std::to_string(i));
    EXPECT_EQ(got[i].body, std::string(i * 5 + 1, 'a' + i));
  }
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameCodecTest, TruncatedFrameReturnsNullUntilComplete) {
  Bytes f = GcsRequestFrame(5, "x", std::string(100, 'z'));
  FrameDecoder d;
  const proto::Envelope* env = nullptr;
  // Only part of the length prefix.
  d.Feed(f.data(), 2);
  ASSERT_TRUE(d.Next(&env).ok());
  EXPECT_EQ(env, nullptr);
  // Prefix plus all but the last byte.
  d.Feed(f.data() + 2, f.size() - 3);
  ASSERT_TRUE(d.Next(&env).ok());
  EXPECT_EQ(env, nullptr);
  EXPECT_EQ(d.buffered(), f.size() - 1);
  d.Feed(f.data() + f.size() - 1, 1);
  ASSERT_TRUE(d.Next(&env).ok());
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(Copy(env).body, std::string(100, 'z'));
}

TEST(FrameCodecTest, SeveralFramesInOneFeedPlusPartialTail) {
  Bytes stream;
  const int kFrames = 50;
  for (int i = 0; i < kFrames; i++) {
    Bytes f = GcsRequestFrame(i, "method", std::string(i, 'q'));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  Bytes tail = GcsRequestFrame(999, "tail", "t");
  stream.insert(stream.end(), tail.begin(), tail.begin() + 7);
  FrameDecoder d;
  d.Feed(stream.data(), stream.size());
  std::vector<uint64_t> ids;
  for (;;) {
    const proto::Envelope* env;
    Status s = d.Next(&env);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (!env) break;
    Decoded got = Copy(env);
    EXPECT_EQ(got.body.size(), got.request_id);
    ids.push_back(got.request_id);
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kFrames));
  for (int i = 0; i < kFrames; i++) EXPECT_EQ(ids[i], static_cast<uint64_t>(i));
  EXPECT_EQ(d.buffered(), 7u);
  d.Feed(tail.data() + 7, tail.size() - 7);
  const proto::Envelope* env;
  ASSERT_TRUE(d.Next(&env).ok());
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(Copy(env).request_id, 999u);
}

TEST(FrameCodecTest, MisalignedSecondFrameDecodes) {
  for (size_t extra = 1; extra <= 7; extra++) {
    SCOPED_TRACE("extra=" + std::to_string(extra));
    Bytes first = PaddedFrame(1, extra);
    Bytes second = GcsRequestFrame(2, "second", "payload-" + std::to_string(extra));
    Bytes third = GcsRequestFrame(3, "third", "z");
    // Sanity: the builder output is 8-aligned, so `second` starts misaligned.
    ASSERT_EQ((GcsRequestFrame(1, "pad", "x").size()) % 8, 0u);
    ASSERT_NE(first.size() % 8, 0u);
    Bytes stream = first;
    stream.insert(stream.end(), second.begin(), second.end());
    stream.insert(stream.end(), third.begin(), third.end());

    // Whole stream in one feed.
    {
      FrameDecoder d;
      d.Feed(stream.data(), stream.size());
      const proto::Envelope* env;
      ASSERT_TRUE(d.Next(&env).ok());
      ASSERT_NE(env, nullptr);
      EXPECT_EQ(Copy(env).request_id, 1u);
      Status s = d.Next(&env);
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_NE(env, nullptr);
      // The envelope handed out must be readable in place (UBSan checks
      // alignment of the scalar loads).
      EXPECT_EQ(reinterpret_cast<uintptr_t>(env) % 4, 0u);
      Decoded got = Copy(env);
      EXPECT_EQ(got.request_id, 2u);
      EXPECT_EQ(got.method, "second");
      EXPECT_EQ(got.body, "payload-" + std::to_string(extra));
      ASSERT_TRUE(d.Next(&env).ok());
      ASSERT_NE(env, nullptr);
      EXPECT_EQ(Copy(env).request_id, 3u);
    }
    // Byte by byte.
    {
      FrameDecoder d;
      std::vector<uint64_t> ids;
      for (uint8_t b : stream) {
        d.Feed(&b, 1);
        const proto::Envelope* env;
        Status s = d.Next(&env);
        ASSERT_TRUE(s.ok()) << s.ToString();
        if (env) ids.push_back(Copy(env).request_id);
      }
      EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2, 3}));
    }
  }
}

TEST(FrameCodecTest, LargeFrameThroughPrepareWriteInChunks) {
  // Bigger than the connection's 64 KiB read chunk: exercises buffer growth
  // and compaction across partial reads, the way Connection fills it.
  std::string big(300 * 1024, 'B');
  for (size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + i % 26);
  Bytes stream = GcsRequestFrame(1, "small", "s");
  Bytes f2 = GcsRequestFrame(2, "big", big);
  Bytes f3 = GcsRequestFrame(3, "small", "t");
  stream.insert(stream.end(), f2.begin(), f2.end());
  stream.insert(stream.end(), f3.begin(), f3.end());

  FrameDecoder d;
  std::vector<Decoded> got;
  size_t pos = 0;
  const size_t kChunk = 65536 - 13;  // odd size so chunks straddle frames
  while (pos < stream.size()) {
    size_t avail = 0;
    uint8_t* dst = d.PrepareWrite(kChunk, &avail);
    ASSERT_GE(avail, kChunk);
    size_t n = std::min(kChunk, stream.size() - pos);
    std::memcpy(dst, stream.data() + pos, n);
    d.CommitWrite(n);
    pos += n;
    for (;;) {
      const proto::Envelope* env;
      Status s = d.Next(&env);
      ASSERT_TRUE(s.ok()) << s.ToString();
      if (!env) break;
      got.push_back(Copy(env));
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].request_id, 1u);
  EXPECT_EQ(got[1].request_id, 2u);
  EXPECT_EQ(got[1].body, big);
  EXPECT_EQ(got[2].body, "t");
}

TEST(FrameCodecTest, ZeroLengthIsInvalid) {
  FrameDecoder d;
  Bytes b = LengthOnly(0);
  d.Feed(b.data(), b.size());
  const proto::Envelope* env = reinterpret_cast<const proto::Envelope*>(1);
  Status s = d.Next(&env);
  EXPECT_EQ(s.code(), StatusCode::kInvalid) << s.ToString();
  EXPECT_EQ(env, nullptr);
}

TEST(FrameCodecTest, ZeroLengthAfterValidFrameIsInvalid) {
  Bytes stream = GcsRequestFrame(1, "ok", "ok");
  Bytes z = LengthOnly(0);
  stream.insert(stream.end(), z.begin(), z.end());
  FrameDecoder d;
  d.Feed(stream.data(), stream.size());
  const proto::Envelope* env;
  ASSERT_TRUE(d.Next(&env).ok());
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(d.Next(&env).code(), StatusCode::kInvalid);
  EXPECT_EQ(env, nullptr);
}

TEST(FrameCodecTest, LengthAboveMaxIsInvalidWithoutWaiting) {
  for (uint32_t len : {kMaxFrameBytes + 1, 0xFFFFFFFFu}) {
    FrameDecoder d;
    Bytes b = LengthOnly(len);
    d.Feed(b.data(), b.size());
    const proto::Envelope* env;
    Status s = d.Next(&env);
    EXPECT_EQ(s.code(), StatusCode::kInvalid) << len << ": " << s.ToString();
    EXPECT_EQ(env, nullptr);
  }
}

TEST(FrameCodecTest, LengthAtMaxWaitsForBytes) {
  FrameDecoder d;
  Bytes b = LengthOnly(kMaxFrameBytes);
  d.Feed(b.data(), b.size());
  const proto::Envelope* env = reinterpret_cast<const proto::Envelope*>(1);
  Status s = d.Next(&env);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(env, nullptr);
}

TEST(FrameCodecTest, GarbagePayloadWithValidLengthIsInvalid) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 200; trial++) {
    uint32_t len = 8 + rng() % 200;
    Bytes b = LengthOnly(len);
    for (uint32_t i = 0; i < len; i++) b.push_back(static_cast<uint8_t>(rng()));
    FrameDecoder d;
    d.Feed(b.data(), b.size());
    const proto::Envelope* env;
    Status s = d.Next(&env);
    EXPECT_EQ(s.code(), StatusCode::kInvalid) << "trial " << trial << ": " << s.ToString();
    EXPECT_EQ(env, nullptr);
  }
}

TEST(FrameCodecTest, CorruptedRootOffsetIsInvalid) {
  Bytes f = GcsRequestFrame(1, "m", "b");
  // The root offset (right after the prefix) now points past the buffer.
  uint32_t bad = 0x7FFFFFF0u;
  std::memcpy(f.data() + 4, &bad, 4);
  FrameDecoder d;
  d.Feed(f.data(), f.size());
  const proto::Envelope* env;
  EXPECT_EQ(d.Next(&env).code(), StatusCode::kInvalid);
  EXPECT_EQ(env, nullptr);
}

TEST(FrameCodecTest, TruncatedLengthPrefixMismatchIsInvalid) {
  // A valid envelope but the prefix claims fewer bytes: the verifier sees a
  // buffer whose embedded offsets run past its end.
  Bytes f = GcsRequestFrame(1, "method", std::string(64, 'x'));
  uint32_t len = PrefixOf(f) - 16;
  std::memcpy(f.data(), &len, 4);
  f.resize(4 + len);
  FrameDecoder d;
  d.Feed(f.data(), f.size());
  const proto::Envelope* env;
  EXPECT_EQ(d.Next(&env).code(), StatusCode::kInvalid);
}

TEST(FrameCodecTest, EnvelopeWithNoneBodyIsInvalid) {
  flatbuffers::FlatBufferBuilder fbb;
  auto env_off = proto::CreateEnvelope(fbb, proto::Body::NONE, 0);
  fbb.FinishSizePrefixed(env_off);
  Bytes f(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  FrameDecoder d;
  d.Feed(f.data(), f.size());
  const proto::Envelope* env;
  Status s = d.Next(&env);
  EXPECT_EQ(s.code(), StatusCode::kInvalid) << s.ToString();
  EXPECT_NE(s.message().find("empty body"), std::string::npos) << s.message();
  EXPECT_EQ(env, nullptr);
}

TEST(FrameCodecTest, BodyTypeWithoutBodyIsInvalid) {
  // body_type says GcsRequest but the union value is missing.
  flatbuffers::FlatBufferBuilder fbb;
  proto::EnvelopeBuilder eb(fbb);
  eb.add_body_type(proto::Body::GcsRequest);
  fbb.FinishSizePrefixed(eb.Finish());
  Bytes f(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  FrameDecoder d;
  d.Feed(f.data(), f.size());
  const proto::Envelope* env = nullptr;
  Status s = d.Next(&env);
  // The FlatBuffers verifier accepts a missing union value; handlers call
  // body_as_X() unchecked, so the decoder must reject it.
  EXPECT_EQ(s.code(), StatusCode::kInvalid) << s.ToString();
  EXPECT_EQ(env, nullptr);
}

}  // namespace
}  // namespace rayts
