// NodeServer in cluster mode: objects across nodes. A local get of an
// object held by another node pulls it into this node's store (PullManager,
// object_pull.h) over a TCP connection to that node's server; the chunks
// another node asks for are served from this node's store (ServeChunk).
// See docs/walkthrough-object-pull.md.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/protocol/peer_address.h"
#include "core/protocol/peer_auth.h"
#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
// The store client id of this node's pulls (never a connection's id: those
// count up from 1).
constexpr plasma::ClientId kPullClient = ~0ull;
// The store client id of the fetches' gets (FetchObject): they take a ref
// only for the instant the object is found sealed.
constexpr plasma::ClientId kFetchClient = ~0ull - 1;
}  // namespace

void NodeServer::InitPulls() {
  PullManager::Hooks h;
  h.create = [this](const ObjectID& id, uint64_t size) -> StatusOr<uint8_t*> {
    // A secondary copy: unpinned (evictable under pressure, the primary
    // stays on its node), never spilled.
    auto off = store_->Create(kPullClient, id, size, /*pinned=*/false, /*allow_spill=*/false);
    if (!off.ok()) {
      if (off.status().code() == StatusCode::kOutOfMemory) BroadcastGc();
      return Status(off.status().code(), "pulling from another node: " + off.status().message());
    }
    region_->AdvanceHighWater(store_->high_water_bytes());
    return region_->data() + *off;
  };
  h.seal = [this](const ObjectID& id) {
    // Seal drops the pull's own ref: the copy is evictable once its readers release it.
    Status s = store_->Seal(kPullClient, id);
    if (s.ok()) {
      NoteCopySealed(id);
      NodeLog(node_id_, "pulled object " + id.Hex() + " (" + std::to_string(pulls_->stats().completed + 1) + " pulls)");
    }
    return s;
  };
  h.abort = [this](const ObjectID& id) { (void)store_->Abort(kPullClient, id); };
  h.request_chunk = [this](const NodeID& from, uint64_t req, const ObjectID& id, uint64_t off, uint64_t len) {
    return SendChunkRequest(from, req, id, off, len);
  };
  h.after = [this](std::chrono::milliseconds delay, std::function<void()> fn) {
    auto t = std::make_shared<asio::steady_timer>(io_);
    t->expires_after(delay);
    t->async_wait([t, fn = std::move(fn)](const asio::error_code& ec) {
      if (!ec) fn();
    });
  };
  PullManager::Options o;
  o.store_bytes = store_->capacity();
  // Pulls under way hold at most 3/4 of the store (one may always run):
  // the rest stays for this node's own puts and results.
  o.max_bytes_pulling = store_->capacity() / 4 * 3;
  pulls_ = std::make_unique<PullManager>(o, std::move(h));
  // Memory freed or an object evictable: queued pulls may fit now (posted:
  // the store calls this from inside its own calls).
  store_->SetRoomCallback([this] {
    if (room_posted_ || !pulls_ || pulls_->num_queued() == 0) return;
    room_posted_ = true;
    asio::post(io_, [this] {
      room_posted_ = false;
      if (pulls_ && !stopped_) pulls_->OnRoom();
    });
  });
}

void NodeServer::StartPull(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, PullPriority priority,
                           std::chrono::milliseconds bound, std::function<void(const Status&)> done) {
  if (!pulls_) {
    done(Status::Invalid("object " + id.Hex() + " is on node " + (sources.empty() ? NodeID::Nil() : sources[0]).Hex() +
                         ", and this node is not in a cluster"));
    return;
  }
  // Being written here by a process of this node (a re-run): the get waits for it.
  if (!pulls_->Pulling(id) && store_->CreatorOf(id)) return;
  // This node is no source of its own (its copy is missing, or it would not pull).
  sources.erase(std::remove(sources.begin(), sources.end(), node_id_), sources.end());
  if (pulls_->Pull(id, std::move(sources), size, priority, bound, std::move(done)) == PullManager::Outcome::kQueued)
    ArmPullRetry();
}

void NodeServer::ArmPullRetry() {
  if (pull_retry_armed_ || stopped_) return;
  pull_retry_armed_ = true;
  if (!pull_retry_timer_) pull_retry_timer_ = std::make_unique<asio::steady_timer>(io_);
  pull_retry_timer_->expires_after(std::chrono::milliseconds(250));
  pull_retry_timer_->async_wait([this](const asio::error_code& ec) {
    pull_retry_armed_ = false;
    if (ec || stopped_ || !pulls_) return;
    pulls_->OnRoom();
    if (pulls_->num_queued() > 0) ArmPullRetry();
  });
}

void NodeServer::HandleFetch(const std::shared_ptr<Client>& c, const proto::FetchObject& r) {
  auto* oid = r.object_id();
  if (!oid || oid->size() != ObjectID::kSize) return;
  const ObjectID id = ObjectID::FromBytes(oid->data());
  const NodeID from = r.node_id() && r.node_id()->size() == NodeID::kSize ? NodeID::FromBytes(r.node_id()->data())
                                                                         : NodeID::Nil();
  std::weak_ptr<Connection> weak = c->conn;
  auto replied = std::make_shared<bool>(false);
  auto reply = [weak, id, replied](const Status& s) {
    if (*replied) return;
    *replied = true;
    auto conn = weak.lock();
    if (!conn) return;
    Fbb fbb(128);
    auto ov = fbb.CreateVector(id.data(), ObjectID::kSize);
    auto msg = s.ok() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(s.message());
    conn->Send(FinishFrame(fbb, proto::CreateFetchObjectReply(fbb, ov, static_cast<int>(s.code()), msg)));
  };
  // Sealed here (in memory or spilled): local already. Otherwise the get
  // waits for the seal of the pulled copy (or of a local writer's).
  auto get_id = std::make_shared<uint64_t>(0);
  *get_id = store_->Get(kFetchClient, {id}, [this, id, reply](std::vector<plasma::GetResult> rs) {
    const bool found = rs.size() == 1 && rs[0].found;
    if (found) store_->Release(kFetchClient, id);
    Status why = found ? Status::OK()
                 : rs.size() == 1 && !rs[0].error.ok()
                     ? rs[0].error
                     : Status::ObjectLost("object " + id.Hex() + " did not arrive in the store of node " + node_id_.Hex());
    reply(why);
  });
  if (*get_id == 0) return;
  if (from.IsNil() || from == node_id_) return;  // made here: the get waits for its seal
  std::vector<NodeID> sources{from};
  if (auto* more = r.sources()) {
    for (size_t i = 0; i + NodeID::kSize <= more->size(); i += NodeID::kSize) {
      NodeID n = NodeID::FromBytes(more->data() + i);
      if (std::find(sources.begin(), sources.end(), n) == sources.end()) sources.push_back(n);
    }
  }
  // A wait has no bound of its own here: the fixed one.
  StartPull(id, std::move(sources), r.size(), PullPriority::kWait, PullManager::kDefaultQueueBound,
            [this, get_id, reply](const Status& s) {
              if (s.ok()) return;  // the seal answers the get
              reply(s);
              store_->CancelGet(*get_id);
            });
}

void NodeServer::StopPulls() {
  if (pull_retry_timer_) pull_retry_timer_->cancel();
  auto links = std::move(pull_links_);
  pull_links_.clear();
  for (auto& [node, conn] : links) conn->Close();
  if (location_timer_) location_timer_->cancel();
  auto owners = std::move(owner_links_);
  owner_links_.clear();
  for (auto& [owner, conn] : owners) conn->Close();
}

StatusOr<TcpSocket> StartPeerConnect(asio::io_context& io, const std::string& address) {
  std::string host;
  int port = 0;
  RAYTS_RETURN_IF_ERROR(ParseHostPort(address, &host, &port));
  // Non-blocking: the io thread does not wait for the handshake. Frames
  // sent meanwhile queue in the Connection and leave once it completes; a
  // refused or unreachable peer fails the read and write, which closes the
  // connection (its close handler fails the pulls from that node). Two SYN
  // retries bound an unanswered connect to about 7 s.
  int fd = StartTcpConnect(host, port);
  if (fd < 0) return Status::IOError("cannot connect to " + address + ": " + std::strerror(errno));
  int syn_retries = 2;
  ::setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syn_retries, sizeof(syn_retries));
  int domain = AF_INET;
  socklen_t len = sizeof(domain);
  ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  TcpSocket sock(io);
  asio::error_code ec;
  sock.assign(domain == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return Status::IOError("cannot use the socket to " + address + ": " + ec.message());
  }
  return sock;
}

// Opened on first use; the connect completes asynchronously (frames queue
// behind it, AuthHello first).
std::shared_ptr<Connection> NodeServer::PeerNodeLink(const NodeID& node) {
  if (stopped_) return nullptr;
  auto it = pull_links_.find(node);
  if (it != pull_links_.end() && !it->second->closed()) return it->second;
  const NodeView* v = view_ ? view_->Find(node) : nullptr;
  if (!v || v->address.empty()) {
    NodeLog(node_id_, "node " + node.Hex() + " is not an alive node of this cluster (an object transfer or free)");
    return nullptr;
  }
  auto sock = StartPeerConnect(io_, v->address);
  if (!sock.ok()) {
    NodeLog(node_id_, "cannot reach the node server of node " + node.Hex() + " at " + v->address + ": " +
                      sock.status().message());
    return nullptr;
  }
  auto conn = std::make_shared<Connection>(std::move(*sock));
  conn->SetMaxFrameBytes(PeerLimits{}.max_frame_bytes);
  std::weak_ptr<Connection> weak = conn;
  conn->Start([this](const proto::Envelope& e) { OnPullReply(e); },
              [this, node, weak](const Status& s) {
                if (stopped_) return;
                auto it = pull_links_.find(node);
                if (it != pull_links_.end() && it->second == weak.lock()) pull_links_.erase(it);
                pulls_->OnNodeGone(node, Status::ObjectLost("the connection to node " + node.Hex() +
                                                         " closed during a pull: " + s.message()));
              });
  conn->Send(AuthHelloFrame(opts_.auth_token, proto::PeerRole::Node));
  pull_links_.insert_or_assign(node, conn);
  return conn;
}

bool NodeServer::SendChunkRequest(const NodeID& from, uint64_t request_id, const ObjectID& id, uint64_t offset,
                                  uint64_t length) {
  auto link = PeerNodeLink(from);
  if (!link) return false;
  Fbb fbb(128);
  auto oid = fbb.CreateVector(id.data(), ObjectID::kSize);
  link->Send(FinishFrame(fbb, proto::CreateObjectChunkRequest(fbb, request_id, oid, offset, length)));
  return true;
}

void NodeServer::HandleFreeObjects(const std::shared_ptr<Client>& c, const proto::FreeObjects& r) {
  auto* ids = r.object_ids();
  if (!ids || ids->size() % ObjectID::kSize != 0) return;
  if (c->remote) {
    for (size_t i = 0; i < ids->size(); i += ObjectID::kSize) {
      const ObjectID id = ObjectID::FromBytes(ids->data() + i);
      copy_owner_.erase(id);  // freed by its owner: no report
      plasma_->Free(id);
    }
    return;
  }
  auto* nodes = r.node_ids();
  if (!nodes || !view_) return;
  for (size_t i = 0; i + NodeID::kSize <= nodes->size(); i += NodeID::kSize) {
    NodeID node = NodeID::FromBytes(nodes->data() + i);
    if (node == node_id_) continue;
    auto link = PeerNodeLink(node);
    if (!link) continue;  // gone: so are its copies
    Fbb fbb(128);
    auto v = fbb.CreateVector(ids->data(), ids->size());
    link->Send(FinishFrame(fbb, proto::CreateFreeObjects(fbb, v)));
  }
}

void NodeServer::OnPullReply(const proto::Envelope& env) {
  if (env.body_type() != proto::Body::ObjectChunk) return;
  auto* c = env.body_as_ObjectChunk();
  Status why = c->code() == 0 ? Status::OK()
                              : Status(static_cast<StatusCode>(c->code()), c->message() ? c->message()->str() : "");
  pulls_->OnChunk(c->request_id(), why, c->total_size(), c->offset(), c->data() ? c->data()->data() : nullptr,
                  c->data() ? c->data()->size() : 0);
}

bool NodeServer::ServeSpilledChunk(const std::shared_ptr<Connection>& conn, const proto::ObjectChunkRequest& r,
                                   const ObjectID& id, uint64_t size) {
  if (r.offset() > size || r.length() > size - r.offset()) return false;  // answered as past its end below
  Fbb fbb(r.length() + 256);
  uint8_t* dst = nullptr;
  auto data = fbb.CreateUninitializedVector(r.length(), &dst);
  Status s = store_->ReadSpilled(id, r.offset(), r.length(), dst);
  if (!s.ok()) {
    NodeLog(node_id_, "cannot serve a chunk of spilled object " + id.Hex() + ": " + s.message());
    return false;  // the store get below restores it, or answers why not
  }
  auto oid = fbb.CreateVector(id.data(), ObjectID::kSize);
  served_chunks_++;
  served_spilled_chunks_++;
  conn->Send(FinishFrame(fbb, proto::CreateObjectChunk(fbb, r.request_id(), oid, 0, {}, size, r.offset(), data)));
  return true;
}

void NodeServer::ServeChunk(const std::shared_ptr<Client>& c, const proto::ObjectChunkRequest& r) {
  ObjectID id = r.object_id() && r.object_id()->size() == ObjectID::kSize ? ObjectID::FromBytes(r.object_id()->data())
                                                                           : ObjectID::Nil();
  uint64_t cid = c->conn->id();
  std::weak_ptr<Connection> weak = c->conn;
  bool answered = false;
  auto answer = [&](std::vector<plasma::GetResult> rs) {
    answered = true;
    auto conn = weak.lock();
    const plasma::GetResult* g = rs.size() == 1 ? &rs[0] : nullptr;
    bool ok = g && g->found && r.offset() + r.length() <= g->size;
    Fbb fbb(ok ? r.length() + 256 : 256);
    auto oid = fbb.CreateVector(id.data(), ObjectID::kSize);
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> data;
    flatbuffers::Offset<flatbuffers::String> msg;
    if (ok) {
      data = fbb.CreateVector(region_->data() + g->offset + r.offset(), r.length());
    } else {
      msg = fbb.CreateString("object " + id.Hex() + " is not in the object store of node " + node_id_.Hex() +
                             (g && g->found ? " (a chunk past its end was asked for)" : ""));
    }
    uint64_t total = g && g->found ? g->size : 0;
    if (g && g->found) store_->Release(cid, id);
    if (!conn) return;
    if (ok) served_chunks_++;
    conn->Send(FinishFrame(fbb, proto::CreateObjectChunk(fbb, r.request_id(), oid,
                                                         ok ? 0 : static_cast<int>(StatusCode::kObjectLost), msg,
                                                         total, r.offset(), data)));
  };
  // On disk only (spilled): the chunk is read from the spill file, not
  // restored into memory (Ray pushes spilled objects from their files).
  if (auto size = store_->SpilledOnlySize(id)) {
    if (ServeSpilledChunk(c->conn, r, id, *size)) return;
  }
  // Answered at once when sealed here; a get that would wait is cancelled
  // (answers not found).
  uint64_t get_id = store_->Get(cid, {id}, answer);
  if (get_id != 0 && !answered) store_->CancelGet(get_id);
}

}  // namespace rayts::raylet
