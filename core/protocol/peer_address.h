// Peer addresses: how one rayts process names another (a CoreWorker's
// listen address, a node server's TCP address).
//
// Forms:
//   "/path/to/sock"            a unix socket: embedded mode, where every
//                              process shares one node
//   "/path/to/sock@ip:port"    cluster mode: the unix socket for processes
//                              of its own node, TCP for the others
//   "ip:port"                  TCP only (a node server's address for
//                              owners of other nodes)
// Two addresses are on one node when their unix sockets share a directory
// (every process of a node listens in that node's sockets directory).
// Thread safety: pure functions.
#pragma once

#include <string>

namespace rayts {

struct PeerAddress {
  std::string path;  // unix socket, or empty
  std::string host;  // TCP host (an IP), or empty
  int port = 0;
  bool has_tcp() const { return !host.empty(); }
};

// Splits at the last '@'; a string without '@' is a path when it holds a
// '/', else host:port ("[v6]:port" too).
PeerAddress ParsePeerAddress(const std::string& address);
std::string TcpAddress(const std::string& host, int port);
// "path@host:port".
std::string JoinPeerAddress(const std::string& path, const std::string& host, int port);
// True when `a` and `b` name processes of one node (see above); an address
// with no TCP part is always local.
bool SameNode(const std::string& a, const std::string& b);
// True when the process at `address` lives on the node whose node server
// listens at unix socket `node_socket` (same sockets directory).
bool OnNodeOf(const std::string& address, const std::string& node_socket);

}  // namespace rayts
