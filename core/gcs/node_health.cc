#include "core/gcs/node_health.h"

namespace rayts::gcs {

namespace {
std::chrono::milliseconds Ms(int ms) { return std::chrono::milliseconds(ms); }
}  // namespace

void NodeHealth::AddNode(const NodeID& id, Clock::time_point now) {
  State s;
  s.next_check = now + Ms(config_.initial_delay_ms);
  s.last_heard = now;
  nodes_[id] = s;
}

void NodeHealth::Heartbeat(const NodeID& id, Clock::time_point now) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  it->second.last_heard = now;
  it->second.failures = 0;
  it->second.probing = false;
}

void NodeHealth::SetConnected(const NodeID& id, bool connected) {
  auto it = nodes_.find(id);
  if (it != nodes_.end()) it->second.connected = connected;
}

int NodeHealth::failures(const NodeID& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? 0 : it->second.failures;
}

bool NodeHealth::Fail(State* s, Clock::time_point now) {
  s->probing = false;
  s->failures++;
  s->next_check = now + Ms(config_.period_ms);
  return s->failures >= config_.failure_threshold;
}

NodeHealth::TickResult NodeHealth::Tick(Clock::time_point now) {
  TickResult out;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    State& s = it->second;
    bool dead = false;
    if (s.probing) {
      if (now - s.probe_sent >= Ms(config_.timeout_ms)) dead = Fail(&s, now);
    } else if (now >= s.next_check) {
      if (s.last_heard + Ms(config_.period_ms) > now) {
        // Heard from within the last period (resource reports): passed.
        s.failures = 0;
        s.next_check = now + Ms(config_.period_ms);
      } else if (!s.connected) {
        dead = Fail(&s, now);  // nothing to probe over: fails at once
      } else {
        s.probing = true;
        s.probe_sent = now;
        s.next_check = now + Ms(config_.period_ms);
        out.probe.push_back(it->first);
      }
    }
    if (dead) {
      out.dead.push_back(it->first);
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace rayts::gcs
