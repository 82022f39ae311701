// FrameDecoder: splits a byte stream into length-prefixed FlatBuffers frames.
//
// Frame format: 4-byte little-endian payload length, then a FlatBuffers
// Envelope (core/protocol/messages.fbs) of that length. Writers build frames
// with FlatBufferBuilder::FinishSizePrefixed, which produces exactly this.
// A length of 0 or above kMaxFrameBytes, or a payload that fails the
// FlatBuffers verifier, is garbage: the decoder reports Status::Invalid and
// the connection is closed. A truncated frame simply waits for more bytes.
// Thread safety: none; one decoder per connection, used by its io thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "core/common/status.h"
#include "protocol/messages_generated.h"

namespace rayts {

// Wraps a finished body into a size-prefixed Envelope frame.
template <typename T>
flatbuffers::DetachedBuffer FinishFrame(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::Offset<T> body) {
  auto env = proto::CreateEnvelope(fbb, proto::BodyTraits<T>::enum_value, body.Union());
  fbb.FinishSizePrefixed(env);
  return fbb.Release();
}


// A copy of a whole frame (prefix included) that a Connection can send
// (forwarding a frame received from another connection).
inline flatbuffers::DetachedBuffer CopyFrame(const uint8_t* p, size_t n) {
  auto* buf = new uint8_t[n];  // freed by the DetachedBuffer (DefaultAllocator: delete[])
  std::memcpy(buf, p, n);
  return flatbuffers::DetachedBuffer(nullptr, false, buf, n, buf, n);
}

constexpr uint32_t kMaxFrameBytes = 256u << 20;  // 256 MiB; large values travel by plasma

// Verifies one whole frame (length prefix included, 8-byte aligned); on
// success *out points into `frame`.
Status VerifyEnvelope(const uint8_t* frame, size_t n, const proto::Envelope** out);

class FrameDecoder {
 public:
  // Space to read into: at least `min` writable bytes at the tail.
  uint8_t* PrepareWrite(size_t min, size_t* avail);
  void CommitWrite(size_t n) { end_ += n; }
  // Appends bytes (tests and blocking readers).
  void Feed(const uint8_t* p, size_t n);

  // Returns OK and sets *env when a whole verified frame is available,
  // OK with *env == nullptr when more bytes are needed, Invalid on garbage.
  // The returned envelope stays valid until the next call on this decoder.
  Status Next(const proto::Envelope** env);

  size_t buffered() const { return end_ - begin_; }
  // Frames above `n` bytes (payload) are garbage (default kMaxFrameBytes).
  void set_max_frame_bytes(uint32_t n) { max_frame_bytes_ = n; }
  // The frame returned by the latest Next (prefix included), valid as long
  // as that envelope.
  std::pair<const uint8_t*, size_t> last_frame() const { return {last_frame_, last_size_}; }

 private:
  void Compact();
  std::vector<uint8_t> buf_;
  std::vector<uint64_t> scratch_;  // aligned copy of a misaligned payload
  size_t begin_ = 0;
  size_t end_ = 0;
  uint32_t max_frame_bytes_ = kMaxFrameBytes;
  const uint8_t* last_frame_ = nullptr;
  size_t last_size_ = 0;
};

}  // namespace rayts
