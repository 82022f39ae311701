#include "core/core_worker/worker_context.h"

namespace rayts {

CoreLockRole core_lock;

void WorkerContext::Unlock() {
  bool notify = notify_pending_;
  notify_pending_ = false;
  mu_.Unlock();
  if (notify && opts_.notify) opts_.notify();
}

std::vector<Event> WorkerContext::DrainEvents() {
  CoreGuard lock(*this);
  std::vector<Event> out;
  out.swap(events_);
  return out;
}

}  // namespace rayts
