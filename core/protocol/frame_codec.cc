#include "core/protocol/frame_codec.h"

#include <cstring>

namespace rayts {

Status VerifyEnvelope(const uint8_t* frame, size_t n, const proto::Envelope** out) {
  flatbuffers::Verifier v(frame, n, /*max_depth=*/64, /*max_tables=*/10000000);
  if (!proto::VerifySizePrefixedEnvelopeBuffer(v)) {
    return Status::Invalid("frame of " + std::to_string(n) + " bytes is not a valid Envelope");
  }
  const proto::Envelope* env = proto::GetSizePrefixedEnvelope(frame);
  // The verifier accepts a union whose value offset is absent; handlers
  // dereference body_as_X() unchecked, so a missing body is garbage too.
  if (env->body_type() == proto::Body::NONE || env->body() == nullptr) {
    return Status::Invalid("frame has an empty body");
  }
  *out = env;
  return Status::OK();
}

void FrameDecoder::Compact() {
  if (begin_ == 0) return;
  size_t n = end_ - begin_;
  if (n) std::memmove(buf_.data(), buf_.data() + begin_, n);
  begin_ = 0;
  end_ = n;
}

uint8_t* FrameDecoder::PrepareWrite(size_t min, size_t* avail) {
  if (buf_.size() - end_ < min) {
    Compact();
    if (buf_.size() - end_ < min) buf_.resize(std::max(buf_.size() * 2, end_ + min));
  }
  *avail = buf_.size() - end_;
  return buf_.data() + end_;
}

void FrameDecoder::Feed(const uint8_t* p, size_t n) {
  size_t avail;
  uint8_t* dst = PrepareWrite(n, &avail);
  std::memcpy(dst, p, n);
  CommitWrite(n);
}

Status FrameDecoder::Next(const proto::Envelope** env) {
  *env = nullptr;
  size_t have = end_ - begin_;
  if (have < 4) {
    if (have == 0) begin_ = end_ = 0;
    return Status::OK();
  }
  uint32_t len;
  std::memcpy(&len, buf_.data() + begin_, 4);
  if (len == 0 || len > max_frame_bytes_) {
    return Status::Invalid("frame length " + std::to_string(len) + " is out of range");
  }
  if (have < 4 + static_cast<size_t>(len)) {
    // Make room for the rest of this frame so the reader can fill it.
    if (buf_.size() - begin_ < 4 + static_cast<size_t>(len)) Compact();
    return Status::OK();
  }
  const uint8_t* frame = buf_.data() + begin_;
  size_t total = 4 + static_cast<size_t>(len);
  begin_ += total;
  if (reinterpret_cast<uintptr_t>(frame) % 8 != 0) {
    // FlatBuffers reads scalars in place: keep them naturally aligned.
    scratch_.resize((total + 7) / 8);
    std::memcpy(scratch_.data(), frame, total);
    frame = reinterpret_cast<const uint8_t*>(scratch_.data());
  }
  last_frame_ = frame;
  last_size_ = total;
  return VerifyEnvelope(frame, total, env);
}

}  // namespace rayts
