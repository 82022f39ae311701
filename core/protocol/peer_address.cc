#include "core/protocol/peer_address.h"

#include <cstdlib>

namespace rayts {

namespace {
std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool ParseHostPortPart(const std::string& s, std::string* host, int* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size()) return false;
  std::string h = s.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  char* end = nullptr;
  long p = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p <= 0 || p > 65535) return false;
  *host = h;
  *port = static_cast<int>(p);
  return true;
}
}  // namespace

PeerAddress ParsePeerAddress(const std::string& address) {
  PeerAddress a;
  auto at = address.rfind('@');
  if (at != std::string::npos) {
    a.path = address.substr(0, at);
    if (!ParseHostPortPart(address.substr(at + 1), &a.host, &a.port)) a.host.clear();
    return a;
  }
  if (address.find('/') != std::string::npos || !ParseHostPortPart(address, &a.host, &a.port)) {
    a.host.clear();
    a.path = address;
  }
  return a;
}

std::string TcpAddress(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string JoinPeerAddress(const std::string& path, const std::string& host, int port) {
  return path + "@" + TcpAddress(host, port);
}

bool OnNodeOf(const std::string& address, const std::string& node_socket) {
  PeerAddress pa = ParsePeerAddress(address);
  if (pa.path.empty() || node_socket.empty()) return false;
  return DirOf(pa.path) == DirOf(node_socket);
}

bool SameNode(const std::string& a, const std::string& b) {
  PeerAddress pa = ParsePeerAddress(a), pb = ParsePeerAddress(b);
  if (pa.path.empty() || pb.path.empty()) return false;  // TCP only: a node server of some node
  if (!pa.has_tcp() || !pb.has_tcp()) return true;       // a unix socket alone: embedded, one node
  return DirOf(pa.path) == DirOf(pb.path);
}

}  // namespace rayts
