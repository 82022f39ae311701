#include "core/core_worker/actor_state.h"

#include "core/common/error_record.h"
#include "core/common/json.h"

namespace rayts {

bool ActorState::MarkDead(const std::string& cause) {
  if (dead) return false;
  dead = true;
  death_cause = cause;
  return true;
}

std::vector<ObjectID> ActorState::TakeCreationArgRefs() {
  auto pinned = std::move(creation_arg_refs);
  creation_arg_refs.clear();
  return pinned;
}

std::string ActorState::DiedJson(const std::string& cause) const {
  std::string out = std::string("{\"kind\":\"") + ErrorKindName(ErrorKind::kActorDied) +
                    "\",\"name\":\"ActorDiedError\",\"message\":";
  JsonEscapeTo(&out, cause);
  out += ",\"actorId\":";
  JsonEscapeTo(&out, id.Hex());
  if (!death_cause_record.empty()) out += ",\"cause\":" + death_cause_record;  // the constructor's error record (JSON)
  out += "}";
  return out;
}

}  // namespace rayts
