// Fakes and small constructors shared by the gtest suite (test/core/).
//
// Role: one definition of the test doubles that several *_test.cc files
// need, so a change to an interface is followed in one place.
// Ownership: plain values; a test owns its fakes.
// Thread safety: none; each fake belongs to the test thread that drives it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/common/id.h"
#include "core/common/status.h"
#include "core/gcs/gcs_tables.h"
#include "core/raylet/worker_pool.h"

namespace rayts::test {

// A WorkerLauncher that starts nothing: it records each launch (worker id and
// a made-up pid counting up from `first_pid`) and each kill, and fails the
// next `fail_launches` launches with IOError.
class FakeLauncher : public raylet::WorkerLauncher {
 public:
  explicit FakeLauncher(int first_pid = 1000) : next_pid(first_pid) {}

  StatusOr<int> Launch(const WorkerID& id) override {
    if (fail_launches > 0) {
      fail_launches--;
      return Status::IOError("fake launch failure");
    }
    launched.emplace_back(id, next_pid);
    return next_pid++;
  }
  void Kill(int pid) override { killed.push_back(pid); }

  std::vector<std::pair<WorkerID, int>> launched;
  std::vector<int> killed;
  int fail_launches = 0;
  int next_pid;
};

// A distinct, recognisable ObjectID per small number n (first byte n, last
// byte 0xAB, zeros between); Id(n) == Id(n) across calls.
inline ObjectID Id(uint8_t n) {
  ObjectID id;
  id.bytes[0] = n;
  id.bytes[19] = 0xAB;
  return id;
}

// A node-table record with a random id.
inline gcs::NodeInfo MakeNode(const std::string& address,
                              std::vector<std::pair<std::string, double>> res = {{"CPU", 2}}) {
  gcs::NodeInfo n;
  n.node_id = NodeID::FromRandom();
  n.address = address;
  n.resources = std::move(res);
  return n;
}

// A daemon node's record: its session directory holds its processes' sockets.
inline gcs::NodeInfo MakeNodeIn(const std::string& session_dir) {
  gcs::NodeInfo n = MakeNode(session_dir + "/sockets/node.sock");
  n.session_dir = session_dir;
  return n;
}

// Waits (bounded) until `pred` holds, polling every millisecond: for tests
// with real sockets and threads. True once it held.
template <typename P>
bool WaitFor(P pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace rayts::test
