// Every message type, corrupted, is refused by the verifier that every
// receiver runs (FrameDecoder, BlockingChannel: VerifyEnvelope) before any
// handler sees it. For each type the same frame is first shown to pass, so
// the corruption is what fails it.
#include <gtest/gtest.h>

#include <cstring>
#include <type_traits>
#include <string>
#include <vector>

#include "core/protocol/connection.h"
#include "core/protocol/frame_codec.h"

namespace rayts {
namespace {

using Fbb = flatbuffers::FlatBufferBuilder;

// An empty table: a valid value for any table type.
flatbuffers::Offset<void> EmptyTable(Fbb& fbb) {
  auto start = fbb.StartTable();
  return flatbuffers::Offset<void>(fbb.EndTable(start));
}

// Offset (in `buf`, after the 4-byte size prefix) of the uoffset field that
// holds the union value of the table at `table_pos`, field slot `slot`.
size_t FieldPos(const std::vector<uint8_t>& buf, size_t table_pos, int slot) {
  int32_t soff;
  std::memcpy(&soff, buf.data() + table_pos, 4);
  size_t vtable = table_pos - soff;
  uint16_t field_off;
  std::memcpy(&field_off, buf.data() + vtable + 4 + 2 * slot, 2);
  EXPECT_NE(field_off, 0) << "field " << slot << " absent";
  return table_pos + field_off;
}

uint32_t ReadU32(const std::vector<uint8_t>& buf, size_t pos) {
  uint32_t v;
  std::memcpy(&v, buf.data() + pos, 4);
  return v;
}

void WriteU32(std::vector<uint8_t>* buf, size_t pos, uint32_t v) { std::memcpy(buf->data() + pos, &v, 4); }

// The envelope table's position, and of its body field (slot 1: body_type
// is slot 0, the value slot 1).
size_t EnvelopeTable(const std::vector<uint8_t>& buf) { return 4 + ReadU32(buf, 4); }

Status Verify(const std::vector<uint8_t>& buf) {
  const proto::Envelope* env = nullptr;
  return VerifyEnvelope(buf.data(), buf.size(), &env);
}

std::vector<uint8_t> Copy(const flatbuffers::DetachedBuffer& b) { return {b.data(), b.data() + b.size()}; }

TEST(FrameVerifyTest, EveryEnvelopeBodyTypeCorruptedIsRefused) {
  int checked = 0;
  for (int t = static_cast<int>(proto::Body::MIN) + 1; t <= static_cast<int>(proto::Body::MAX); t++) {
    SCOPED_TRACE(std::string("body type ") + proto::EnumNameBody(static_cast<proto::Body>(t)));
    Fbb fbb(64);
    auto body = EmptyTable(fbb);
    fbb.FinishSizePrefixed(proto::CreateEnvelope(fbb, static_cast<proto::Body>(t), body));
    std::vector<uint8_t> buf = Copy(fbb.Release());
    ASSERT_TRUE(Verify(buf).ok());
    // The body's offset now points far past the end of the frame.
    WriteU32(&buf, FieldPos(buf, EnvelopeTable(buf), 1), 0x7ffffff0u);
    EXPECT_EQ(Verify(buf).code(), StatusCode::kInvalid);
    checked++;
  }
  EXPECT_EQ(checked, static_cast<int>(proto::Body::MAX));
}

// A GcsRequest / GcsReply whose inner union value is corrupted: the nested
// union is verified too.
template <typename Type, typename Build>
int CorruptNested(Type min, Type max, Build build) {
  int checked = 0;
  for (int t = static_cast<int>(min) + 1; t <= static_cast<int>(max); t++) {
    Fbb fbb(64);
    auto inner = EmptyTable(fbb);
    auto outer = build(fbb, static_cast<Type>(t), inner);
    std::vector<uint8_t> buf = Copy(FinishFrame(fbb, outer));
    EXPECT_TRUE(Verify(buf).ok()) << "type " << t;
    size_t env = EnvelopeTable(buf);
    size_t body_field = FieldPos(buf, env, 1);
    size_t outer_pos = body_field + ReadU32(buf, body_field);
    // GcsRequest: request_id 0, body_type 1, body 2; GcsReply: request_id 0,
    // code 1, message 2, body_type 3, body 4.
    int slot = std::is_same_v<Type, proto::GcsRequestBody> ? 2 : 4;
    WriteU32(&buf, FieldPos(buf, outer_pos, slot), 0x7ffffff0u);
    EXPECT_EQ(Verify(buf).code(), StatusCode::kInvalid) << "type " << t;
    checked++;
  }
  return checked;
}

TEST(FrameVerifyTest, EveryGcsRequestTypeCorruptedIsRefused) {
  int n = CorruptNested(proto::GcsRequestBody::MIN, proto::GcsRequestBody::MAX,
                        [](Fbb& fbb, proto::GcsRequestBody t, flatbuffers::Offset<void> inner) {
                          return proto::CreateGcsRequest(fbb, 1, t, inner);
                        });
  EXPECT_EQ(n, static_cast<int>(proto::GcsRequestBody::MAX));
}

TEST(FrameVerifyTest, EveryGcsReplyTypeCorruptedIsRefused) {
  int n = CorruptNested(proto::GcsReplyBody::MIN, proto::GcsReplyBody::MAX,
                        [](Fbb& fbb, proto::GcsReplyBody t, flatbuffers::Offset<void> inner) {
                          auto msg = fbb.CreateString("m");
                          return proto::CreateGcsReply(fbb, 1, 0, msg, t, inner);
                        });
  EXPECT_EQ(n, static_cast<int>(proto::GcsReplyBody::MAX));
}

TEST(FrameVerifyTest, AStringLengthPastTheEndIsRefused) {
  // A field-level corruption inside a typed GCS request: the class name's
  // length runs past the frame.
  Fbb fbb(128);
  auto cls = fbb.CreateString("Counter");
  auto body = proto::CreateRegisterActorRequest(fbb, 0, 0, 0, cls);
  std::vector<uint8_t> buf =
      Copy(FinishFrame(fbb, proto::CreateGcsRequest(fbb, 1, proto::GcsRequestBody::RegisterActorRequest, body.Union())));
  ASSERT_TRUE(Verify(buf).ok());
  std::string text(reinterpret_cast<const char*>(buf.data()), buf.size());
  size_t at = text.find("Counter");
  ASSERT_NE(at, std::string::npos);
  WriteU32(&buf, at - 4, 0x00ffffffu);
  EXPECT_EQ(Verify(buf).code(), StatusCode::kInvalid);
}

}  // namespace
}  // namespace rayts
