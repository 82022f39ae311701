#include "core/protocol/peer_auth.h"

#include <unistd.h>

#include "core/common/constant_time.h"

namespace rayts {

flatbuffers::DetachedBuffer AuthHelloFrame(const std::string& token, proto::PeerRole role) {
  flatbuffers::FlatBufferBuilder fbb(128 + token.size());
  auto tok = fbb.CreateString(token);
  return FinishFrame(fbb, proto::CreateAuthHello(fbb, tok, role, kAuthProtocolVersion, ::getpid()));
}

Status CheckAuthHello(const proto::Envelope& env, const std::string& token) {
  if (env.body_type() != proto::Body::AuthHello) {
    return Status::Invalid(std::string("its first frame was ") + proto::EnumNameBody(env.body_type()) +
                           ", not AuthHello (no auth token presented)");
  }
  auto* hello = env.body_as_AuthHello();
  std::string presented = hello->token() ? hello->token()->str() : std::string();
  if (presented.empty()) return Status::Unauthenticated("no auth token");
  if (token.empty() || !ConstantTimeEquals(presented, token)) return Status::Unauthenticated("wrong auth token");
  if (hello->version() != kAuthProtocolVersion) {
    return Status::Invalid("protocol version " + std::to_string(hello->version()) + ", this side speaks " +
                           std::to_string(kAuthProtocolVersion));
  }
  return Status::OK();
}

}  // namespace rayts
