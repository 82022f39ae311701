// NodeServer: the per-node daemon logic (the "raylet"): plasma store, worker
// pool, lease manager, and in embedded mode the GCS tables, behind one unix
// socket.
//
// Role: accepts CoreWorker connections; each CoreWorker opens a plasma
// channel (registers, receives the store memfd over SCM_RIGHTS, then
// create/seal/get/release) and a control connection (leases, GCS calls).
// Workers are real `node` processes spawned through ProcessWorkerLauncher.
// Hosted on its own io thread, inside the driver (embedded) or a daemon.
// Ownership: owns the shared-memory region, the store, the pool, the lease
// manager, and the parts it delegates to: PlasmaService (plasma messages),
// the GcsService (core/gcs/gcs_service.h; every GcsRequest, in embedded
// mode), node_stats.h (node-local queries), MemoryKillDriver (the memory
// monitor's kills) and WorkerLogs (the workers' stdout/stderr). It keeps the clients, the workers and the lease table. Leases are kept in one table, one
// record per granted lease (owner connection, worker, kind): when an owner
// disconnects, its leases are returned and its requests cancelled.
// Resources: after every io-thread event that may change what is free, the
// node reports its available resources to the GCS if they changed.
// Worker output: read from per-worker pipes by WorkerLogs on the io thread.
// Spilling: the store spills to and restores from a SpillStore on the io
// thread, inside the create or get that needs it (see plasma_store.h).
// Cluster mode: a GcsLink (gcs_link.h) to the cluster's GCS replaces the
// embedded GcsService: client GcsRequests are forwarded, the driver's job
// id comes from the GCS, resources are reported by the link's timer. The
// node also listens on TCP at its IP (authenticated, peer_auth.h) for the
// lease requests of owners on other nodes, keeps the cluster's resource
// views the GCS broadcasts (ClusterView) and decides where each lease
// request goes (SchedulingPolicy): granted here, spilled back to another
// node (the reply names it; the owner asks there, with grant_or_reject),
// rejected (a spilled request this node will not take), or failed at once
// when no node could ever run it. Requests queued here are reconsidered
// when the views change (spilled to a node that can run them now). When
// the GCS marks another node dead (NodeDied), OnNodeDied drops it from the
// view, fails pulls from it, ends the workers leased here by owners that
// lived there and tells every local CoreWorker (once per node: the GCS
// replays the deaths a node may have missed when its link reconnects); any
// owner of another node whose connection closes loses its leases and the
// task workers it leased end. The copies this node pulls are reported to
// their owners in batches (node_server_locations.cc).
// node_server_leases.cc holds the lease handling, node_server_cluster.cc
// the GCS link and the TCP listener.
// Thread safety: all state lives on the io thread; Start/Stop/StatsJson/
// StoreObjectsJson/fatal may be called from any thread.
// Invariants: a lease record exists exactly while its lease is granted and
// not yet returned to the LeaseManager (erased in TakeLease, the only
// place).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/common/asio.h"

#include "core/gcs/gcs_service.h"
#include "core/plasma/plasma_store.h"
#include "core/plasma/shm_region.h"
#include "core/plasma/spill_store.h"
#include "core/protocol/connection.h"
#include "core/raylet/cluster_view.h"
#include "core/raylet/gcs_link.h"
#include "core/raylet/lease_manager.h"
#include "core/raylet/scheduling_policy.h"
#include "core/raylet/memory_kill_driver.h"
#include "core/raylet/memory_monitor.h"
#include "core/raylet/node_stats.h"
#include "core/raylet/object_pull.h"
#include "core/raylet/plasma_service.h"
#include "core/raylet/worker_logs.h"
#include "core/raylet/worker_pool.h"

namespace rayts::raylet {

struct NodeServerOptions {
  std::string socket_path;
  std::string session_dir;
  uint64_t store_bytes = 512ull << 20;
  std::vector<std::pair<std::string, double>> resources;  // e.g. {"CPU", 2}
  int prestart_workers = 0;
  int max_workers = 8;
  // Idle workers above prestart_workers are ended after this long idle
  // (Ray's idle_worker_killing_time_threshold_ms); < 0: never.
  int idle_worker_timeout_ms = 1000;
  std::vector<std::string> worker_argv;
  std::vector<std::string> worker_env;
  std::string working_dir;
  // Memory monitor (memory_monitor.h): past this fraction of the node's
  // memory, one leased worker is killed per sample. Sampled every period;
  // period 0 disables the monitor.
  double memory_usage_threshold = 0.95;
  int memory_monitor_period_ms = 250;
  // Object spilling: files go to a fresh `spill_XXXXXX` directory under
  // spill_dir (empty: session_dir, or the system temp dir if that is empty
  // too), removed at Stop. spill_max_bytes < 0: free space of that
  // filesystem minus a margin; 0: spilling off.
  std::string spill_dir;
  int64_t spill_max_bytes = -1;
  // Worker output (worker_logs.h): every worker's stdout/stderr goes to
  // session_dir/logs/worker-<id>-<pid>.out/.err (rotated past
  // worker_log_max_bytes) and, when log_to_driver, to this process's
  // stdout/stderr with a `(name pid=N)` prefix. No session_dir: workers
  // share this process's stdout/stderr.
  bool log_to_driver = true;
  uint64_t worker_log_max_bytes = 16ull << 20;
  // Cluster mode (a daemon node): the GCS at gcs_address (host:port) over
  // TCP with auth_token (gcs_link.h) instead of an embedded GcsService.
  std::string gcs_address;
  std::string auth_token;
  std::string node_ip = "127.0.0.1";
  bool is_head = false;
  int node_manager_port = 0;  // the node server's TCP port for owners of other nodes (0: any free one)
  int gcs_report_period_ms = 100;
  int gcs_reconnect_timeout_ms = 60000;
};

class NodeServer {
 public:
  static StatusOr<std::unique_ptr<NodeServer>> Start(NodeServerOptions opts);
  ~NodeServer();
  void Stop();  // idempotent: kills workers, closes the socket
  const NodeID& node_id() const { return node_id_; }
  // Cluster mode: why the node cannot go on (the GCS refused it or stayed
  // unreachable); OK while it runs. Its host stops it.
  Status fatal() const EXCLUDES(fatal_mu_) {
    MutexLock lock(&fatal_mu_);
    return fatal_;
  }
  // JSON of the node-local queries (see node_stats.h), from any thread: a
  // blocking hop to the io thread, "{}" when stopped or after 5 s.
  std::string StatsJson();
  std::string StoreObjectsJson();

 private:
  struct Client;
  class ClientGcsPeer;
  // One granted lease.
  struct LeaseRecord {
    uint64_t owner = 0;      // owner client id; 0 once a detached actor's owner is gone
    WorkerID worker;
    bool actor = false;      // the worker hosts an actor: it exits with its lease
    bool detached = false;   // a detached actor: the lease outlives its owner
    bool retriable = false;  // the owner would retry the work on it (killed first under memory pressure)
  };
  explicit NodeServer(NodeServerOptions opts);
  Status Init();
  void Accept();
  void OnMessage(const std::shared_ptr<Client>& c, const proto::Envelope& env);
  void OnClose(const std::shared_ptr<Client>& c);
  // True if client `cid` disconnected, or its peer hung up and the close is
  // not processed yet (a killed worker). io thread.
  bool ClientGone(uint64_t cid);
  void HandleRegister(const std::shared_ptr<Client>& c, const proto::RegisterClient* r);
  // Registration checks (node_server_workers.cc): the peer's pid from the
  // socket (SO_PEERCRED; `claimed` if the kernel does not say); why a
  // registration is refused (OK: accepted); a refusal answers the error
  // without the store fd, logs it and closes the connection.
  static int PeerPid(const Client& c, int claimed);
  Status CheckRegistration(const Client& c, const proto::RegisterClient& r, const WorkerID& wid, int pid) const;
  void RefuseRegistration(const std::shared_ptr<Client>& c, const Status& why);
  void SendRegisterReply(const std::shared_ptr<Client>& c, const Status& s, JobID job);
  // Cluster mode (node_server_cluster.cc).
  Status InitGcsLink();
  void OnGcsRequest(const std::shared_ptr<Client>& c, const proto::GcsRequest& req);
  void OnClientGoneFromGcs(const std::shared_ptr<Client>& c);
  void HandleLease(const std::shared_ptr<Client>& c, const proto::RequestWorkerLease* r);
  // Queues a request this node takes (the LeaseManager grants it).
  void QueueLease(const std::shared_ptr<Client>& c, const proto::RequestWorkerLease* r, const SchedulingRequest& sr);
  // Cluster mode (node_server_leases.cc): answers a request this node does
  // not grant: spillback, rejected, or failed.
  void ReplyLeaseError(const std::shared_ptr<Client>& c, uint64_t request_id, const Status& s);
  void ReplyRedirect(const std::shared_ptr<Client>& c, uint64_t request_id, const SchedulingDecision& d);
  void OnView(const proto::ResourceViewUpdate& u);
  // The GCS marked a node dead (node_server_death.cc): it leaves the view,
  // pulls from it fail, owners of it lose the leases and workers they held
  // here, and every CoreWorker of this node is told.
  void OnNodeDied(const proto::NodeDied& d);
  // The GCS creates a detached actor again here (node_server_actor_restart.cc).
  struct RestartOutcome {
    int code = 0;
    std::string message;
    NodeID retry_at = NodeID::Nil();
    bool rejected = false;
    WorkerID worker = WorkerID::Nil();
    std::string address;
    bool constructor_threw = false;
  };
  void OnRestartActor(const proto::RestartActor& r);
  void PushRestartCreation(const TaskID& actor, uint64_t lease_id, const WorkerID& worker,
                           std::shared_ptr<flatbuffers::DetachedBuffer> frame);
  void ReplyRestart(const TaskID& actor, const RestartOutcome& o);
  // Queued requests that another node can run now go there (Ray's TrySpillback).
  void SpillQueued();
  void RecordInfeasible(const ResourceSet& shape);
  std::vector<std::pair<GcsLink::Resources, int>> InfeasibleDemand();
  // The TCP listener for owners of other nodes (node_server_cluster.cc).
  Status ListenTcp();
  void AcceptTcp();
  // A frame from another node's process: false when it is not handled further.
  bool OnRemoteFrame(const std::shared_ptr<Client>& c, const proto::Envelope& env);
  // Objects across nodes (node_server_objects.cc): pulls of objects this
  // node lacks from other nodes' servers, and the chunks it serves them.
  void InitPulls();
  void StopPulls();
  void ArmPullRetry();
  // A local get of `id`, held by the nodes `sources`, found it missing here
  // (queued up to `bound` when it does not fit yet).
  void StartPull(const ObjectID& id, std::vector<NodeID> sources, uint64_t size, PullPriority priority,
                 std::chrono::milliseconds bound, std::function<void(const Status&)> done);
  bool SendChunkRequest(const NodeID& from, uint64_t request_id, const ObjectID& id, uint64_t offset, uint64_t length);
  void ServeChunk(const std::shared_ptr<Client>& c, const proto::ObjectChunkRequest& r);
  // A chunk of an object on disk only, read from its spill file; false when
  // it cannot be (ServeChunk then answers through the store).
  bool ServeSpilledChunk(const std::shared_ptr<Connection>& conn, const proto::ObjectChunkRequest& r,
                         const ObjectID& id, uint64_t size);
  // ray.wait fetchLocal (FetchObject): brings an object into this node's
  // store (a pull unless it is here) and answers FetchObjectReply.
  void HandleFetch(const std::shared_ptr<Client>& c, const proto::FetchObject& r);
  void OnPullReply(const proto::Envelope& env);
  // From a local owner (naming nodes): sent on to those nodes; from another
  // node (TCP): this node's copies are deleted.
  void HandleFreeObjects(const std::shared_ptr<Client>& c, const proto::FreeObjects& r);
  // The connection to node `node`'s server (opened on first use, AuthHello
  // first); null when it is not a known node or cannot be reached.
  std::shared_ptr<Connection> PeerNodeLink(const NodeID& node);
  // Copies reported to their owners (node_server_locations.cc): a reader's
  // ObjectOwner names the owner of an object it may pull; the sealed copy
  // and its leaving the store are queued per owner and sent in batches
  // (ObjectLocationsUpdate); PinObjects makes a copy here the primary.
  void OnObjectOwner(const proto::ObjectOwner& r);
  void NoteCopySealed(const ObjectID& id);
  void NoteCopyFreed(const ObjectID& id);
  void QueueLocationReport(const std::string& owner, const ObjectID& id, bool added);
  void FlushLocationReports();
  // The connection to an owner's listen socket (opened on first use); null
  // when it cannot be reached.
  std::shared_ptr<Connection> OwnerLink(const std::string& owner);
  void HandlePinObjects(const std::shared_ptr<Client>& c, const proto::PinObjects& r);
  // Removes and returns the record of a granted lease (the only eraser).
  std::optional<LeaseRecord> TakeLease(uint64_t lease_id);
  // The GCS killed an actor: end the worker listening at `address`.
  void KillWorkerAt(const std::string& address);
  void ReportResourcesIfChanged();
  void WorkerGone(WorkerID id);
  // A reaped worker that was leased when it went: tells the lease's owner
  // how it ended and what it last wrote to stderr (WorkerDied;
  // node_server_workers.cc). `code` as ProcessWorkerLauncher::Reap gives it.
  void ReportLeasedExit(int pid, int code);
  // How a worker that never registered ended, with its last stderr lines
  // (consumed), for the pool's start-failure error.
  std::string StartFailureCause(int pid, int code);
  void ScheduleReap();
  NodeStatsSources StatsSources() const;
  // NodeProcessesReply: this node's registered CoreWorkers, drivers first
  // (node_server_workers.cc).
  flatbuffers::DetachedBuffer ProcessesReply(uint64_t request_id) const;
  // Runs `query` (a reply frame builder) on the io thread and renders its
  // reply as JSON; waits at most 5 s. The state it touches is shared, so a
  // late run after a timed-out wait touches nothing that is gone.
  std::string QueryJsonOnIoThread(std::function<flatbuffers::DetachedBuffer()> query);
  int SpareFor(const ResourceSet& req);
  void BroadcastGc();  // rate-limited TriggerGc to every client
  // The memory monitor's view of this node and how it reaches a worker.
  MemoryKillDriver::Hooks MemoryKillHooks();

  NodeServerOptions opts_;
  NodeID node_id_ = NodeID::FromRandom();
  asio::io_context io_;
  std::unique_ptr<WorkerLogs> logs_;  // after io_: destroyed before it
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> reap_timer_;
  std::unique_ptr<asio::steady_timer> accept_timer_;  // the retry after an accept error
  int accept_backoff_ms_ = 0;
  uint64_t accept_errors_ = 0;
  std::thread thread_;
  std::atomic<bool> stopped_{false};

  std::unique_ptr<plasma::ShmRegion> region_;
  std::unique_ptr<plasma::SpillStore> spill_;  // before store_: outlives it
  std::unique_ptr<plasma::PlasmaStore> store_;
  std::unique_ptr<ProcessWorkerLauncher> launcher_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<LeaseManager> leases_;
  std::unique_ptr<gcs::GcsService> gcs_;  // embedded mode
  std::unique_ptr<GcsLink> link_;          // cluster mode
  std::unique_ptr<asio::ip::tcp::acceptor> tcp_acceptor_;  // cluster mode
  std::string node_manager_address_;       // its ip:port
  std::unordered_map<std::string, int> tcp_per_ip_;  // open TCP clients per peer IP
  std::unique_ptr<ClusterView> view_;      // cluster mode
  SchedulingPolicy policy_;
  uint64_t spilled_leases_ = 0;
  std::unique_ptr<PullManager> pulls_;     // cluster mode
  bool room_posted_ = false;  // a PullManager::OnRoom is posted (the store freed room)
  // While pulls are queued: retried now and then (a full create asks every
  // process to collect garbage, whose releases may not free memory at once).
  std::unique_ptr<asio::steady_timer> pull_retry_timer_;
  bool pull_retry_armed_ = false;
  uint64_t served_chunks_ = 0;
  uint64_t served_spilled_chunks_ = 0;  // of which read from spill files
  std::unordered_map<NodeID, std::shared_ptr<Connection>, IdHash> pull_links_;  // to other nodes' servers
  std::unordered_map<ObjectID, std::string, IdHash> pull_owner_;  // objects a reader may pull -> their owner
  std::unordered_map<ObjectID, std::string, IdHash> copy_owner_;  // secondary copies here -> their owner
  struct LocationBatch { std::string added, removed; };          // ids concatenated
  std::unordered_map<std::string, LocationBatch> location_batches_;  // by owner address
  size_t location_batch_ids_ = 0;
  bool location_timer_armed_ = false;
  std::unique_ptr<asio::steady_timer> location_timer_;
  std::unordered_map<std::string, std::shared_ptr<Connection>> owner_links_;  // to owners' listen sockets
  // Nodes whose NodeDied was handled: a replay after a GCS reconnect skips them.
  std::unordered_set<NodeID, IdHash> dead_nodes_;
  std::unordered_map<uint64_t, SchedulingRequest> queued_sched_;    // cluster mode: queued request key -> how to place it
  std::unordered_map<uint64_t, SchedulingDecision> redirects_;      // key -> where its cancel sends it
  struct Infeasible { ResourceSet shape; int count = 0; std::chrono::steady_clock::time_point last; };
  std::map<std::string, Infeasible> infeasible_;  // by shape, refused lately (shown by rayts status)
  mutable Mutex fatal_mu_;
  Status fatal_ GUARDED_BY(fatal_mu_);
  ResourceSet reported_available_;  // last report to the GCS

  std::unordered_map<uint64_t, std::shared_ptr<Client>> clients_;
  std::unordered_map<WorkerID, std::string, IdHash> worker_address_;
  std::unordered_map<WorkerID, int, IdHash> worker_pid_;
  std::unordered_map<uint64_t, LeaseRecord> granted_;    // lease id -> its record
  // Workers that died holding a lease, until they are reaped (ReportLeasedExit).
  struct LeasedDeath {
    WorkerID worker;
    uint64_t owner = 0;
    uint64_t lease = 0;
  };
  std::unordered_map<int, LeasedDeath> leased_deaths_;  // pid -> its lease
  std::unique_ptr<PlasmaService> plasma_;
  std::unique_ptr<MemoryKillDriver> memory_;
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> request_owner_;  // key -> (client, request id)
  // Connections to workers that construct an actor the GCS restarts here, until they answer.
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> restart_links_;
  uint64_t next_request_key_ = 1;
  JobID current_job_ = 0;
  bool prestarted_ = false;
  std::chrono::steady_clock::time_point last_gc_broadcast_{};  // the latest driver's job (embedded mode: the only one)
};

}  // namespace rayts::raylet
