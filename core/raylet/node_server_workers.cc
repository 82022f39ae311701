// NodeServer: who its clients are and how its workers end.
// Registration: a client is what the kernel says it is (its pid from
// SO_PEERCRED), a worker registers only as the process the pool launched
// for its id, and a worker id has one plasma channel and one control
// connection; a refused registration changes no state (no record, no store
// fd, no worker killed when its connection closes).
// Exits: how a leased worker ended is told to the lease's owner
// (ReportLeasedExit), whose WorkerCrashedError then says whether it exited
// with a code or was killed by a signal, and carries its last stderr lines.
// A worker that ends before it registers is a start failure: its cause
// (StartFailureCause) goes to the pool, which fails the waiting lease
// requests with it when starts keep failing (worker_pool.h).
// Listing: the registered CoreWorkers and their listen addresses
// (NodeProcessesReply, for `rayts memory --address`).
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

flatbuffers::DetachedBuffer NodeServer::ProcessesReply(uint64_t request_id) const {
  std::vector<const Client*> procs;
  for (auto& [cid, c] : clients_) {
    // The plasma channel's registration names the listen address; the
    // control connection of the same process does not count again.
    if (c->registered && !c->remote && !c->control && !c->listen_path.empty()) procs.push_back(c.get());
  }
  std::sort(procs.begin(), procs.end(), [](const Client* a, const Client* b) {
    return std::make_tuple(!a->is_driver, a->pid) < std::make_tuple(!b->is_driver, b->pid);
  });
  flatbuffers::FlatBufferBuilder fbb(256 + 128 * procs.size());
  std::vector<flatbuffers::Offset<proto::NodeProcess>> v;
  for (const Client* c : procs) v.push_back(proto::CreateNodeProcess(fbb, c->pid, c->is_driver, fbb.CreateString(c->listen_path)));
  return FinishFrame(fbb, proto::CreateNodeProcessesReply(fbb, request_id, fbb.CreateVector(v)));
}

int NodeServer::PeerPid(const Client& c, int claimed) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(c.conn->socket().native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
    return cred.pid;
  }
  return claimed;
}

Status NodeServer::CheckRegistration(const Client& c, const proto::RegisterClient& r, const WorkerID& wid,
                                     int pid) const {
  if (c.registered) return Status::InvalidArgument("this connection is registered already");
  if (wid.IsNil()) return Status::InvalidArgument("a registration must name a worker id");
  if (!r.is_driver() && !r.control() && worker_pid_.count(wid)) {
    return Status::InvalidArgument("worker " + wid.Hex() + " is registered already");
  }
  bool own_plasma = false;
  for (auto& [id, o] : clients_) {
    if (!o->registered || o->worker_id != wid) continue;
    if (o->control == r.control()) {
      return Status::InvalidArgument(std::string(r.control() ? "a control connection" : "a plasma channel") +
                                     " of worker " + wid.Hex() + " is registered already");
    }
    if (!o->control && o->pid == pid) own_plasma = true;
  }
  // A control connection comes second, from the process whose plasma
  // channel registered this id (CoreWorker::Connect does them in that order).
  if (r.control() && !own_plasma) {
    return Status::InvalidArgument("control connection of worker " + wid.Hex() + " from pid " + std::to_string(pid) +
                                   ", which registered no plasma channel under that id");
  }
  return Status::OK();
}

void NodeServer::RefuseRegistration(const std::shared_ptr<Client>& c, const Status& why) {
  std::fprintf(stderr, "rayts node server: refused a registration from pid %d: %s\n", PeerPid(*c, 0),
               why.message().c_str());
  flatbuffers::FlatBufferBuilder fbb(256);
  auto msg = fbb.CreateString(why.message());
  proto::RegisterReplyBuilder b(fbb);
  b.add_code(static_cast<int>(why.code()));
  b.add_message(msg);
  c->conn->Send(FinishFrame(fbb, b.Finish()));  // no store fd; written at once (nothing else is queued)
  c->conn->Close();
}

void NodeServer::ReportLeasedExit(int pid, int code) {
  auto it = leased_deaths_.find(pid);
  if (it == leased_deaths_.end()) return;
  LeasedDeath d = it->second;
  leased_deaths_.erase(it);
  std::string tail = logs_ ? logs_->StderrTail(pid) : std::string();
  auto owner = clients_.find(d.owner);
  if (owner == clients_.end() || owner->second->conn->closed()) return;
  flatbuffers::FlatBufferBuilder fbb(256 + tail.size());
  auto wid = fbb.CreateVector(d.worker.data(), WorkerID::kSize);
  auto t = tail.empty() ? 0 : fbb.CreateString(tail);
  owner->second->conn->Send(
      FinishFrame(fbb, proto::CreateWorkerDied(fbb, wid, d.lease, pid, code >= 0 ? code : -1, code < 0 ? -code : 0, t)));
}

std::string NodeServer::StartFailureCause(int pid, int code) {
  std::string out = "the last one (pid " + std::to_string(pid) + ") ";
  out += code >= 0 ? "exited with code " + std::to_string(code) : "was killed by signal " + std::to_string(-code);
  std::string tail = logs_ ? logs_->StderrTail(pid) : std::string();
  if (!tail.empty()) {
    out += "; its last stderr lines:";
    size_t from = 0;
    while (from <= tail.size()) {
      size_t nl = tail.find('\n', from);
      out += "\n  " + tail.substr(from, nl == std::string::npos ? std::string::npos : nl - from);
      if (nl == std::string::npos) break;
      from = nl + 1;
    }
  }
  return out;
}

}  // namespace rayts::raylet
