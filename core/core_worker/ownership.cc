// CoreWorker, ownership part: the borrower protocol (refs that travel to
// other processes), lineage reconstruction of lost plasma copies and the
// memory summary. See "Borrowing" and "Lineage reconstruction" in
// docs/walkthrough-object.md.
#include <unistd.h>

#include <cstring>

#include "core/common/json.h"
#include "core/common/error_record.h"
#include "core/core_worker/core_worker.h"
#include "core/core_worker/internal.h"

namespace rayts {

using namespace wire;  // NOLINT: file-local wire helpers

// ------------------------------------------------------------- borrowing --

void CoreWorker::StageNested(std::vector<NestedRefIn> refs) {
  Guard lock(this);
  for (auto& r : refs) {
    if (r.owner_address == opts_.listen_path) r.owner_address.clear();
    staged_nested_.push_back(std::move(r));
  }
}

std::vector<NestedRefIn> CoreWorker::TakeStagedLocked() {
  std::vector<NestedRefIn> out;
  out.swap(staged_nested_);
  return out;
}

// `nested` are held by `outer`'s value (a put) or by a pending task (`held`).
void CoreWorker::HoldNestedLocked(const std::vector<NestedRefIn>& nested, const ObjectID* outer,
                                  std::vector<ObjectID>* held) {
  std::vector<ObjectID> inners;
  for (auto& n : nested) {
    bool created = outer ? refs_.AddContained(n.id, n.owner_address) : refs_.AddSubmittedRef(n.id, n.owner_address);
    if (created) RegisterBorrowLocked(n.id, n.owner_address);
    inners.push_back(n.id);
  }
  if (outer) refs_.SetContains(*outer, std::move(inners));
  if (held) held->insert(held->end(), inners.begin(), inners.end());
}

// A new borrowed entry: register this process with the owner. Until the
// owner acknowledges, frames that release anything wait (QueueReleasingLocked),
// so whoever handed us the ref keeps it until the owner knows about us.
void CoreWorker::RegisterBorrowLocked(const ObjectID& id, const std::string& owner) {
  if (IsSelf(owner)) return;
  auto c = OwnerConnectionLocked(owner);
  if (!c) return;  // the owner is dead: a get reports OwnerDiedError
  uint64_t rid = next_request_id_++;
  pending_acks_[rid] = owner;
  refs_.AddRegistered(id, 1);
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto me = fbb.CreateString(opts_.listen_path);
  QueueToLocked(c, FinishFrame(fbb, proto::CreateAddBorrower(fbb, rid, oid, me)));
}

// Executor side: `borrower` (the caller) receives `id` inside a return value.
void CoreWorker::RegisterOnBehalfLocked(const ObjectID& id, const std::string& owner, const std::string& borrower) {
  if (borrower.empty()) return;
  if (IsSelf(owner)) {
    if (refs_.AddBorrower(id, borrower)) WatchBorrowerLocked(borrower);
    return;
  }
  auto c = OwnerConnectionLocked(owner);
  if (!c) return;
  uint64_t rid = next_request_id_++;
  pending_acks_[rid] = owner;
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  auto who = fbb.CreateString(borrower);
  QueueToLocked(c, FinishFrame(fbb, proto::CreateAddBorrower(fbb, rid, oid, who)));
}

// Owner side: a connection to the borrower's listen socket; when it closes
// (the process died or shut down) its registrations are dropped.
void CoreWorker::WatchBorrowerLocked(const std::string& address) {
  if (IsSelf(address)) return;
  if (!OwnerConnectionLocked(address)) refs_.DropBorrower(address);
}

void CoreWorker::OnBorrowerMessageLocked(const std::shared_ptr<Connection>& c, const proto::Envelope& env) {
  if (env.body_type() == proto::Body::AddBorrower) {
    auto* m = env.body_as_AddBorrower();
    ObjectID id = IdFrom<ObjectID>(m->object_id());
    std::string who = Str(m->borrower_address());
    // Unknown (already freed) objects are not recorded: the borrower's get
    // then reports ObjectLostError.
    if (refs_.AddBorrower(id, who)) WatchBorrowerLocked(who);
    if (m->request_id() != 0) {
      Fbb fbb(32);
      QueueToLocked(c, FinishFrame(fbb, proto::CreateBorrowerAck(fbb, m->request_id())));
    }
  } else if (env.body_type() == proto::Body::RemoveBorrower) {
    auto* m = env.body_as_RemoveBorrower();
    refs_.RemoveBorrower(IdFrom<ObjectID>(m->object_id()), Str(m->borrower_address()), m->count());
  }
}

void CoreWorker::AckedLocked(uint64_t request_id) {
  if (pending_acks_.erase(request_id) == 0 || !pending_acks_.empty()) return;
  auto frames = std::move(deferred_);
  deferred_.clear();
  for (auto& [c, f] : frames) QueueToLocked(c, std::move(f));
}

void CoreWorker::QueueReleasingLocked(const std::shared_ptr<Connection>& c, flatbuffers::DetachedBuffer frame) {
  if (pending_acks_.empty()) {
    QueueToLocked(c, std::move(frame));
  } else {
    deferred_.emplace_back(c, std::move(frame));
  }
}

// The process at `address` is gone (our connection to its socket closed).
void CoreWorker::OnPeerClosedLocked(const std::string& address, const std::shared_ptr<Connection>& c) {
  if (shutting_down_) return;
  auto it = owner_conns_.find(address);
  if (it != owner_conns_.end() && c && it->second != c) return;  // an older connection
  // Every fetch still waiting on it fails.
  std::vector<ObjectID> lost;
  for (auto& id : borrowed_fetching_) {
    const ReferenceCounter::Ref* r = refs_.Find(id);
    const StoredObject* o = memory_store_.Find(id);
    if ((!o || !o->ready) && (!r || r->owner_address == address)) lost.push_back(id);
  }
  for (auto& id : lost) {
    borrowed_fetching_.erase(id);
    StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kOwnerDied, "OwnerDiedError",
                                         "the owner of object " + id.Hex() + " (" + address +
                                             ") died before the object could be fetched",
                                         id.Hex()));
  }
  // As a borrower of our objects, it holds nothing any more.
  refs_.DropBorrower(address);
  // As an owner, it will not acknowledge registrations.
  std::vector<uint64_t> acks;
  for (auto& [rid, owner] : pending_acks_) if (owner == address) acks.push_back(rid);
  for (auto rid : acks) AckedLocked(rid);
}

// Caller side: a return value holds refs; the executor registered this
// process as their borrower. The outer object holds them from now on.
void CoreWorker::AdoptNestedLocked(const ObjectID& outer, bool outer_alive, const proto::ReturnObject* ret) {
  std::vector<ObjectID> inners;
  for (auto* n : *ret->nested()) {
    ObjectID id = IdFrom<ObjectID>(n->object_id());
    std::string owner = Str(n->owner_address());
    if (IsSelf(owner)) {
      // We own it: the registration made for us becomes a contained count.
      if (!refs_.Has(id)) continue;
      if (outer_alive) {
        refs_.AddContained(id, "");
        inners.push_back(id);
      }
      refs_.RemoveBorrower(id, opts_.listen_path, 1);
      continue;
    }
    refs_.AddContained(id, owner);
    refs_.AddRegistered(id, 1);  // made on our behalf: no AddBorrower of our own
    if (outer_alive) inners.push_back(id);
    else refs_.RemoveContained(id);
  }
  if (outer_alive && !inners.empty()) refs_.SetContains(outer, std::move(inners));
}

// ----------------------------------------------------------------- lineage --

void CoreWorker::RecordLineageLocked(const std::shared_ptr<Pending>& t) {
  const SubmitRequest& r = t->req;
  // Only normal tasks are re-executable; only plasma copies can be lost; a
  // task holding nested refs would need them kept too (not done).
  if (!r.actor_id.IsNil() || r.num_returns < 1 || r.max_retries == 0 || !t->held_refs.empty()) return;
  int64_t live = 0;
  bool any_plasma = false;
  for (auto& id : t->return_ids) {
    const StoredObject* o = memory_store_.Find(id);
    if (o && o->ready && o->is_error) return;
    if (o && o->in_plasma) any_plasma = true;
    if (refs_.Has(id)) live++;
  }
  if (!any_plasma || lineage_.Has(t->task_id)) return;
  uint64_t bytes = 256 + r.cls->name.size();
  std::vector<TaskID> parents;
  for (auto& a : r.args) {
    bytes += sizeof(TaskArgIn) + (a.data ? a.data->size() : 0);
    if (a.by_ref && a.owner_address.empty() && !IsPutObject(a.id)) parents.push_back(TaskIdOf(a.id));
  }
  lineage_.Add(t->task_id, std::make_shared<const SubmitRequest>(r), bytes, live, parents, r.max_retries);
}

Status CoreWorker::Reconstruct(const ObjectID& id) {
  Guard lock(this);
  recover_requested_.erase(id);
  const ReferenceCounter::Ref* r = refs_.Find(id);
  if (!r || !r->owned) {
    Status s = Status::ObjectLost("object " + id.Hex() + " is not owned by this process (or was freed): cannot recover it");
    FailRemoteWaitersLocked(id, s);
    return s;
  }
  const StoredObject* o = memory_store_.Find(id);
  if (o && !o->ready) return Status::OK();  // being produced (or recovered) already
  if (o && o->ready && (!o->in_plasma || plasma_.Contains(id))) {
    ObjectReadyLocked(id);  // not lost: answer whoever asked
    return Status::OK();
  }
  Status s = ReconstructLocked(id, 0);
  if (!s.ok()) FailRemoteWaitersLocked(id, s);
  return s;
}

Status CoreWorker::ReconstructLocked(const ObjectID& id, int depth) {
  if (IsPutObject(id)) {
    return Status::ObjectLost("object " + id.Hex() + " was lost from the object store and cannot be reconstructed: "
                              "it was created by ray.put(), which has no lineage (only task results are recomputable)");
  }
  TaskID task = TaskIdOf(id);
  if (tasks_.count(task)) return Status::OK();  // its task is running again
  LineageCache::Entry* e = lineage_.Find(task);
  if (!e) {
    return Status::ObjectLost("object " + id.Hex() + " was lost from the object store and cannot be reconstructed: "
                              "the lineage of the task that created it is not kept (it was evicted past lineageMaxBytes, "
                              "or the task is an actor call, streaming, has maxRetries 0, or took nested refs)");
  }
  if (e->reconstructions_left == 0) {
    return Status::ObjectLost("object " + id.Hex() + " was lost again and its task's retries (maxRetries) are used up");
  }
  if (depth > 100000) return Status::ObjectLost("object " + id.Hex() + ": lineage too deep to reconstruct");
  if (e->reconstructions_left > 0) e->reconstructions_left--;
  SubmitRequest req = *std::static_pointer_cast<const SubmitRequest>(e->spec);
  // Recover the arguments first (recursively): those freed since, or whose
  // plasma copy is gone too.
  std::vector<ObjectID> revived;
  for (auto& a : req.args) {
    if (!a.by_ref || !a.owner_address.empty()) continue;
    const StoredObject* o = memory_store_.Find(a.id);
    bool lost = !o || (o->ready && o->in_plasma && !plasma_.Contains(a.id));
    if (!lost) continue;
    if (!refs_.Has(a.id)) {
      refs_.AddOwned(a.id, 0);  // held by the re-run task below (submitted count)
      if (!IsPutObject(a.id)) lineage_.ReturnRevived(TaskIdOf(a.id));
      revived.push_back(a.id);
    }
    Status s = ReconstructLocked(a.id, depth + 1);
    if (!s.ok()) {
      for (auto& r : revived) refs_.ReleaseIfUnused(r);
      return s;
    }
  }
  for (int i = 0; i < req.num_returns; i++) {
    ObjectID rid = ObjectIdFor(task, static_cast<uint32_t>(i + 1));
    if (!refs_.Has(rid)) continue;
    memory_store_.Erase(rid);
    memory_store_.GetOrCreate(rid);  // pending until the re-run answers
  }
  ResubmitLocked(task, req);
  return Status::OK();
}

void CoreWorker::ResubmitLocked(const TaskID& task, const SubmitRequest& req) {
  auto t = std::make_shared<Pending>();
  t->task_id = task;
  t->key = req.cls->scheduling_key;
  t->retries_left = req.max_retries;
  reconstructions_++;
  for (int i = 0; i < req.num_returns; i++) t->return_ids.push_back(ObjectIdFor(task, static_cast<uint32_t>(i + 1)));
  for (auto& a : req.args) {
    if (!a.by_ref || !a.owner_address.empty()) continue;
    PinOwnedArgLocked(t, a.id);
  }
  t->req = req;
  auto& ks = keys_[t->key];
  if (!ks) {
    ks = std::make_unique<KeyState>();
    ks->key = t->key;
    ks->resources = req.cls->resources;
  }
  tasks_[task] = t;
  if (t->unresolved == 0) EnqueueReadyLocked(t);
}

void CoreWorker::FailRemoteWaitersLocked(const ObjectID& id, const Status& s) {
  auto rw = remote_waiters_.find(id);
  if (rw == remote_waiters_.end()) return;
  for (auto& [conn, req] : rw->second) {
    Fbb fbb(256);
    auto item = BuildReturn(fbb, id, ReturnValue{});
    auto msg = fbb.CreateString(s.message());
    QueueToLocked(conn, FinishFrame(fbb, proto::CreateGetObjectReply(fbb, req, static_cast<int>(StatusCode::kObjectLost),
                                                                     msg, item)));
  }
  remote_waiters_.erase(rw);
}

void CoreWorker::ReportLost(const ObjectID& id, const std::string& owner_address) {
  Guard lock(this);
  if (IsSelf(owner_address)) return;
  memory_store_.Erase(id);  // our cached "in plasma" is stale
  if (!borrowed_fetching_.insert(id).second) return;
  auto c = OwnerConnectionLocked(owner_address);
  if (!c) {
    borrowed_fetching_.erase(id);
    StoreErrorLocked(id, ErrorRecordJson(ErrorKind::kOwnerDied, "OwnerDiedError",
                                         "the plasma copy of object " + id.Hex() + " was lost and its owner (" +
                                             owner_address + ") has died, so it cannot be recovered", id.Hex()));
    return;
  }
  Fbb fbb(128);
  auto oid = IdBytes(fbb, id);
  QueueToLocked(c, FinishFrame(fbb, proto::CreateGetObject(fbb, next_request_id_++, oid, /*lost=*/true)));
}


// ----------------------------------------------------------------- summary --

std::string CoreWorker::MemorySummaryJson() {
  Guard lock(this);
  return MemorySummaryJsonLocked();
}

std::string CoreWorker::MemorySummaryJsonLocked() {
  std::string out = "{\"address\":";
  JsonEscapeTo(&out, opts_.listen_path);
  out += ",\"pid\":" + std::to_string(::getpid()) + ",\"isDriver\":" + (opts_.is_driver ? "true" : "false");
  out += ",\"lineageBytes\":" + std::to_string(lineage_.bytes()) +
         ",\"lineageMaxBytes\":" + std::to_string(lineage_.max_bytes()) +
         ",\"lineageEntries\":" + std::to_string(lineage_.size()) +
         ",\"lineageEvicted\":" + std::to_string(lineage_.evicted()) +
         ",\"reconstructions\":" + std::to_string(reconstructions_) + ",\"objects\":[";
  bool first = true;
  // The visitor runs inside ForEach, under mu_ like this function.
  refs_.ForEach([&](const ObjectID& id, const ReferenceCounter::Ref& r) NO_THREAD_SAFETY_ANALYSIS {
    const StoredObject* o = memory_store_.Find(id);
    const char* status = !o ? "unknown" : !o->ready ? "pending" : o->is_error ? "error" : "ready";
    const char* location = !o || !o->ready ? "none" : o->in_plasma ? "plasma" : "memory";
    if (!first) out += ',';
    first = false;
    out += "{\"id\":\"" + id.Hex() + "\",\"owned\":" + (r.owned ? "true" : "false") + ",\"owner\":";
    JsonEscapeTo(&out, r.owned ? opts_.listen_path : r.owner_address);
    out += ",\"status\":\"" + std::string(status) + "\",\"location\":\"" + location + "\"";
    out += ",\"size\":" + std::to_string(o ? (o->size ? o->size : (o->data ? o->data->size() : 0)) : 0);
    out += ",\"local\":" + std::to_string(r.local) + ",\"submitted\":" + std::to_string(r.submitted) +
           ",\"contained\":" + std::to_string(r.contained) + ",\"borrowers\":" + std::to_string(r.BorrowerCount()) +
           ",\"contains\":" + std::to_string(r.contains.size()) + ",\"lineage\":" +
           (r.owned && !IsPutObject(id) && lineage_.Has(TaskIdOf(id)) ? "true" : "false") + "}";
  });
  out += "]}";
  return out;
}

}  // namespace rayts
