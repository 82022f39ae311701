// Actor records in the GCS store: the bytes ActorTable writes through its
// StoreClient (table "actor", key = the actor id's hex) and reads back.
//
// Role: one line of tab-separated fields, strings escaped (\t, \n and \\),
// in the layout the node and job records use (gcs_tables.cc), so a
// persistent store (Redis, with GCS fault tolerance) can rebuild the actor
// table with DecodeActorRecord.
// Thread safety: pure functions.
#pragma once

#include <string>

#include "core/common/status.h"
#include "core/gcs/actor_table.h"

namespace rayts::gcs {

inline constexpr const char* kActorStoreTable = "actor";

std::string EncodeActorRecord(const ActorInfo& a);
// InvalidArgument naming the field when the bytes are not a record.
StatusOr<ActorInfo> DecodeActorRecord(const std::string& bytes);

}  // namespace rayts::gcs
