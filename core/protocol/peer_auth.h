// Peer authentication on TCP: the cluster token in the first frame of every
// TCP connection (to the GCS, to a node server, to a CoreWorker), and the
// bounds every TCP listener puts on its peers.
//
// A connecting side sends AuthHelloFrame(token, role) first (and may queue
// more frames behind it); the accepting side holds the connection to
// PeerLimits::max_handshake_frame_bytes until that frame arrives, checks it
// with CheckAuthHello (constant-time token compare), closes it with a
// logged reason otherwise or when it has not come within
// handshake_timeout_ms, and then allows frames of max_frame_bytes.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "core/common/status.h"
#include "core/protocol/frame_codec.h"

namespace rayts {

inline constexpr int kAuthProtocolVersion = 1;

struct PeerLimits {
  int handshake_timeout_ms = 5000;
  int max_connections_per_peer = 256;   // open connections from one IP
  uint32_t max_handshake_frame_bytes = 4096;
  uint32_t max_frame_bytes = 64u << 20;
};

flatbuffers::DetachedBuffer AuthHelloFrame(const std::string& token, proto::PeerRole role);

// OK when `env` is an AuthHello carrying `token` and this protocol version.
// Otherwise why, ready to log: Unauthenticated ("no auth token" / "wrong
// auth token"), or Invalid (another first frame, another version).
Status CheckAuthHello(const proto::Envelope& env, const std::string& token);

}  // namespace rayts
