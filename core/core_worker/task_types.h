// The records that cross the CoreWorker's boundary: what the host submits
// (TaskClass, SubmitRequest, TaskArgIn, NestedRefIn), what it is asked to run
// (ExecTask, ExecArg), what it answers (ReturnValue), what it is told (Event)
// and what it reads (LookupResult), plus the CoreWorker's options.
// Thread safety: plain values; whoever holds one owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/common/id.h"

namespace rayts {

struct CoreWorkerOptions {
  std::string node_socket;   // the node server's unix socket
  std::string listen_path;   // this process's own socket (direct task push)
  // Cluster mode: the node's IP; the process also listens on TCP there and
  // its address becomes "listen_path@ip:port" (peer_address.h).
  std::string node_ip;
  bool is_driver = true;
  WorkerID worker_id = WorkerID::FromRandom();
  JobID job_id = 0;
  std::function<void()> notify;  // any thread; must not call back into CoreWorker
  uint64_t lineage_max_bytes = 64ull << 20;  // bound on kept task specs (lineageMaxBytes)
};

// A ref found inside a value being serialized (see BorrowerProtocol::StageNested).
struct NestedRefIn {
  ObjectID id;
  std::string owner_address;  // empty: this process
  int slot = 0;               // return index for task results; 0 otherwise
};

struct FunctionRef {
  std::string hash, source, module_url, export_name;
};

// One argument, from the host at submit time. Every queued task keeps its
// arguments (a million queued tasks: a million of these), so one string
// serves both forms: 56 bytes, and a value of up to 15 bytes needs no
// allocation of its own (a shared_ptr<string> per value cost 64 more).
struct TaskArgIn {
  ObjectID id;               // by_ref
  bool by_ref = false;
  // by_ref: the owner's address (empty if this process owns it); by value:
  // the serialized bytes. Read through owner_address() / data().
  std::string bytes;

  static TaskArgIn Value(std::string data) {
    TaskArgIn a;
    a.bytes = std::move(data);
    return a;
  }
  static TaskArgIn Ref(const ObjectID& id, std::string owner_address) {
    TaskArgIn a;
    a.by_ref = true;
    a.id = id;
    a.bytes = std::move(owner_address);
    return a;
  }
  const std::string& owner_address() const { return bytes; }  // by_ref only
  const std::string& data() const { return bytes; }           // by value only
  void SetOwnedHere() { bytes.clear(); }                       // by_ref: this process is the owner
};

// A task's or actor's schedulingStrategy (proto::SchedulingStrategy).
struct SchedulingOptions {
  int strategy = 0;              // 0 Default (hybrid), 1 Spread, 2 NodeAffinity
  NodeID node = NodeID::Nil();   // NodeAffinity
  bool soft = false;             // NodeAffinity: any node when that one cannot run it
};

// What every task of one remote function (with one option set) shares:
// registered once, referenced by id on each submit (no per-call strings).
struct TaskClass {
  FunctionRef function;
  std::string name;
  std::vector<std::pair<std::string, double>> resources;
  uint64_t scheduling_key = 0;  // computed at registration
  // retryExceptions: "" none, "*" any thrown error, else error names
  // separated by '\n'. The executor decides; the owner retries.
  std::string retry_exceptions;
  SchedulingOptions scheduling;
};

// What only actor creations and actor calls carry. A queued normal task
// carries none of it (SubmitRequest::actor() is the shared default): 80
// bytes less per queued task, one small allocation more per actor call.
struct ActorFields {
  std::string method;        // calls: the method (empty for the constructor call)
  // Actor creation: JSON {name: {maxConcurrency, methods}}; an actor call: the
  // named group it runs in ('' = its method's). Read by the executor.
  std::string concurrency_groups;
  int max_concurrency = 0;   // actor creation: 0 = the executor's default
  int max_pending = 0;       // actor calls: > 0 limits queued + running calls
  int max_restarts = 0;      // actor creation: -1 forever
  int max_task_retries = 0;  // actor creation (and a borrowed handle's first call): retries of calls cut by a restart; -1 forever
  bool actor_creation = false;
  bool release_cpu = false;  // actor creation: give the placement CPU back once constructed
  bool detached = false;     // actor creation: lifetime 'detached'
};

inline const ActorFields kNoActorFields{};

struct SubmitRequest {
  std::shared_ptr<const TaskClass> cls;
  // Actor tasks: the actor (creation and calls); nil for normal tasks.
  TaskID actor_id;
  TaskID parent;             // the task (executing here) that submitted it; nil from the driver's top level
  std::vector<TaskArgIn> args;
  // The task's name when not its class's (an actor call's options); a
  // pointer, not a string: rare, and a queued task should stay small.
  std::shared_ptr<const std::string> name;
  int num_returns = 1;       // -1: streaming
  int max_retries = 3;

  const ActorFields& actor() const { return actor_ ? *actor_ : kNoActorFields; }
  ActorFields& mutable_actor() {
    if (!actor_) actor_ = std::make_unique<ActorFields>();
    return *actor_;
  }

  SubmitRequest() = default;
  SubmitRequest(SubmitRequest&&) = default;
  SubmitRequest& operator=(SubmitRequest&&) = default;
  SubmitRequest(const SubmitRequest& o)
      : cls(o.cls), actor_id(o.actor_id), parent(o.parent), args(o.args), name(o.name),
        num_returns(o.num_returns), max_retries(o.max_retries),
        actor_(o.actor_ ? std::make_unique<ActorFields>(*o.actor_) : nullptr) {}
  SubmitRequest& operator=(const SubmitRequest& o) {
    if (this != &o) *this = SubmitRequest(o);
    return *this;
  }

 private:
  std::unique_ptr<ActorFields> actor_;  // null: none of the actor fields is set
};

struct ExecArg {             // to the host at execution time
  bool by_ref = false;       // value must be fetched (plasma or the owner)
  bool in_plasma = false;
  ObjectID id;
  std::string owner_address;
  std::shared_ptr<const std::string> data;
};

// What the tasks of one class pushed on one connection share: the receiver
// learns it once per connection (TaskSpec.class_ref) and every later task
// of the class points at it.
struct ExecClass {
  FunctionRef function;
  std::string name;
  std::string retry_exceptions;  // as TaskClass::retry_exceptions
  std::string owner_address;     // the pushing process: owner of the returns
  WorkerID caller;
  uint64_t serial = 0;           // unique in this process (the bindings key their JS strings by it)
};

struct ExecTask {
  uint64_t handle = 0;
  TaskID task_id;
  TaskID actor_id;           // nil for normal tasks
  bool actor_creation = false;
  std::string method;
  int max_concurrency = 0;
  std::string concurrency_groups;
  bool release_cpu = false;
  std::shared_ptr<const ExecClass> cls;  // never null
  std::string name;          // the call's own name; empty: cls->name
  std::vector<ExecArg> args;
  int num_returns = 1;
  int attempt = 0;             // 0 the first run; an actor creation: the actor's restarts
  int generator_skip = 0;      // streaming: items of earlier attempts the owner has (not reported again)
  const std::string& task_name() const { return name.empty() ? cls->name : name; }
};

struct ReturnValue {         // from the host when a task finishes
  std::shared_ptr<const std::string> data;  // inline bytes or error JSON
  bool in_plasma = false;    // already created and sealed in plasma under its id
  bool is_error = false;
  uint64_t size = 0;
  NodeID node;               // in_plasma: the node whose store holds it (nil: the receiver's own)
  std::string copies;        // in_plasma, from the owner: other nodes holding a copy (ids concatenated)
};

struct Event {
  enum class Type { kObjectReady, kExecuteTask, kGeneratorItem, kGeneratorEnd, kGcsReply, kCancelTask, kTriggerGc,
                    kRecoverObject,    // a borrower lost the plasma copy; call Reconstruct
                    kObjectLocal };    // ray.wait fetchLocal: the object is on this node now
  explicit Event(Type t) : type(t) {}
  Type type;
  ObjectID object_id;
  TaskID task_id;
  uint64_t id = 0;           // request id / task handle
  int64_t index = 0;
  int code = 0;
  std::string text;          // message or reply body
  std::shared_ptr<ExecTask> task;
  bool force = false;
};

struct LookupResult {
  bool known = false, ready = false, in_plasma = false, is_error = false;
  std::shared_ptr<const std::string> data;
  uint64_t size = 0;
};

}  // namespace rayts
