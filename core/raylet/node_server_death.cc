// NodeServer in cluster mode: another node died (the GCS's NodeDied; see
// node_server.h). Ray's raylet does the same in NodeManager::NodeRemoved:
// the node leaves the view, transfers from it fail, the workers leased here
// by owners that lived there end (their owner is gone; their resources come
// back), and every CoreWorker of this node hears of it, so owners retry
// what ran there and recover what was stored there (core_worker.h).
#include "core/protocol/peer_address.h"
#include "core/raylet/node_server.h"
#include "core/raylet/node_server_client.h"

namespace rayts::raylet {

namespace {
using Fbb = flatbuffers::FlatBufferBuilder;
std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }
}  // namespace

void NodeServer::OnNodeDied(const proto::NodeDied& d) {
  if (!d.node_id() || d.node_id()->size() != NodeID::kSize) return;
  NodeID dead = NodeID::FromBytes(d.node_id()->data());
  if (dead == node_id_) return;  // this node: the GCS link's fatal path stops it
  // Once per node: the GCS replays the deaths since this node joined when
  // its link registers again (NodeDied sent while it was away was lost).
  if (!dead_nodes_.insert(dead).second) return;
  const std::string socket = Str(d.address());
  const std::string why = "node " + dead.Hex() + " died (" + Str(d.reason()) + ")";
  NodeLog(node_id_, why);
  // 1. Out of the view: no lease goes there any more.
  if (view_ && view_->Apply(dead, 0, /*alive=*/false, "", ResourceSet(), ResourceSet())) SpillQueued();
  // 2. Pulls from it fail now (the owner recovers the object), and the
  // connection to its server goes.
  if (pulls_) pulls_->OnNodeGone(dead, Status::ObjectLost(why + " while object(s) were pulled from it"));
  auto pl = pull_links_.find(dead);
  if (pl != pull_links_.end()) {
    auto conn = pl->second;
    pull_links_.erase(pl);
    conn->Close();
  }
  // 3. Owners that lived there: their connections go (OnClose cancels their
  // requests, returns their leases and ends the workers they leased), even
  // if the TCP connection itself still looks open (a machine gone silent).
  std::vector<std::shared_ptr<Client>> gone;
  for (auto& [cid, c] : clients_) {
    if (c->remote && !c->owner_address.empty() && OnNodeOf(c->owner_address, socket)) gone.push_back(c);
  }
  for (auto& c : gone) {
    NodeLog(node_id_, "ending the leases of " + c->owner_address + ": its " + why);
    c->conn->Close();
    OnClose(c);  // at once; the close handler finds it gone
  }
  // 4. Every CoreWorker of this node (control connections) hears of it.
  Fbb fbb(512);
  auto nid = fbb.CreateVector(dead.data(), NodeID::kSize);
  auto frame = FinishFrame(fbb, proto::CreateNodeDied(fbb, nid, fbb.CreateString(socket),
                                                      fbb.CreateString(Str(d.node_manager_address())),
                                                      fbb.CreateString(Str(d.reason()))));
  for (auto& [cid, c] : clients_) {
    if (c->registered && c->control && !c->remote) c->conn->Send(CopyFrame(frame.data(), frame.size()));
  }
}

}  // namespace rayts::raylet
