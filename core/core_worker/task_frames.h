// The frames both submitters send about leases and tasks: the PushTask of a
// task on a lease (its spec: function, arguments, wire numbers), the worker
// lease request, and the lease return; and the lease bookkeeping they share.
// Thread safety: functions of their arguments; callers hold the core lock
// (the memory store and the lease are guarded by it).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/core_worker/memory_store.h"
#include "core/core_worker/task_records.h"
#include "core/core_worker/transport.h"
#include "core/core_worker/worker_context.h"

namespace rayts {

// Pushes `t` on `lease`: records it in flight and queues its PushTask frame
// (the function's source only the first time on this lease; owned by-ref
// arguments that are small and ready travel inline).
void PushOnLease(const std::shared_ptr<Lease>& lease, const std::shared_ptr<PendingTask>& t, Clock::time_point now,
                 const WorkerContext& ctx, const MemoryStore& store) REQUIRES(core_lock);

// A detached actor's creation as the GCS keeps it (an ActorRestartSpec
// buffer, core/protocol/cluster.fbs): the constructor's PushTask frame, its
// class defined inline, and the lease it needs, so a node can create the
// actor again once its owner is gone. Empty, with *not_restartable saying
// why, when that cannot work without the owner (a by-reference argument).
std::string ActorRestartSpecBytes(const PendingTask& creation, const std::vector<std::pair<std::string, double>>& resources,
                                  const SchedulingOptions& scheduling, bool retriable, const WorkerContext& ctx,
                                  const MemoryStore& store, std::string* not_restartable) REQUIRES(core_lock);

// grant_or_reject: sent to the node a spillback reply named, which also
// gets the owner's address (it ends the owner's workers if its node dies).
// locality: the node holding most of the task's plasma argument bytes (nil:
// none known).
Frame LeaseRequestFrame(uint64_t request_id, uint64_t key, const std::vector<std::pair<std::string, double>>& resources,
                        bool is_actor, bool detached, bool retriable, const SchedulingOptions& scheduling = {},
                        bool grant_or_reject = false, const NodeID& locality = NodeID::Nil(),
                        const std::string& owner_address = "");

// Gives the lease back to the node that granted it (unless it is a
// borrowed actor's link) and closes its link. Once per lease: later calls
// do nothing.
void ReturnLease(Lease& lease, Transport& transport, bool worker_exiting) REQUIRES(core_lock);

class TaskManager;
using ReplyHandler = std::function<void(const std::shared_ptr<Lease>&, const proto::PushTaskReply&)>;
using LeaseClosedHandler = std::function<void(const std::shared_ptr<Lease>&, const Status&)>;

// Connects `lease` to its worker (false: unreachable). On that link a
// PushTaskReply goes to `on_reply`, a streamed item to the task manager, a
// WorkerExiting notice is kept on the lease (the cause of the close that
// follows), and the close goes to `on_closed`; each with the core lock held.
bool ConnectLease(const std::shared_ptr<Lease>& lease, Transport& transport, WorkerContext& ctx, TaskManager& tasks,
                  ReplyHandler on_reply, LeaseClosedHandler on_closed) REQUIRES(core_lock);

}  // namespace rayts
