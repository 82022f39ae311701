#include "core/core_worker/outbox.h"

namespace rayts {

void Outbox::Queue(std::shared_ptr<Connection> c, flatbuffers::DetachedBuffer frame) {
  if (!c) return;
  bool on_io = std::this_thread::get_id() == io_thread_.load(std::memory_order_relaxed);
  bool post = false;
  {
    MutexLock lock(&mu_);
    frames_.emplace_back(std::move(c), std::move(frame));
    if (on_io && !io_flush_scheduled_) io_flush_scheduled_ = post = true;
  }
  if (post) {
    asio::post(io_, [this] {
      {
        MutexLock lock(&mu_);
        io_flush_scheduled_ = false;
      }
      Flush();
    });
    return;
  }
  if (!on_io) host_flush_requested_.store(true, std::memory_order_relaxed);
}

void Outbox::Flush() {
  MutexLock lock(&mu_);
  if (frames_.empty()) return;
  // Consecutive frames to one connection go out in one sendmsg.
  std::vector<flatbuffers::DetachedBuffer> run;
  Connection* current = nullptr;
  std::shared_ptr<Connection> conn;
  for (auto& [c, f] : frames_) {
    if (c.get() != current) {
      if (conn) conn->SendBatch(&run);
      conn = c;
      current = c.get();
    }
    run.push_back(std::move(f));
  }
  if (conn) conn->SendBatch(&run);
  frames_.clear();
}

}  // namespace rayts
