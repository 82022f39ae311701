#include "core/raylet/lease_manager.h"

#include <gtest/gtest.h>

#include "test/core/test_util.h"

namespace rayts::raylet {
namespace {

using test::FakeLauncher;

ResourceSet R(const std::vector<std::pair<std::string, double>>& m) {
  StatusOr<ResourceSet> r = ResourceSet::FromMap(m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : ResourceSet();
}

class LeaseManagerTest : public ::testing::Test {
 protected:
  void Make(const ResourceSet& total, int max_workers = 16,
            int max_bypass = LeaseManager::kDefaultMaxBypass) {
    pool_ = std::make_unique<WorkerPool>(&launcher_, max_workers);
    manager_ = std::make_unique<LeaseManager>(total, pool_.get(), max_bypass);
  }

  // Requests a lease; its result lands in results_[key].
  void Request(uint64_t key, const ResourceSet& r) {
    manager_->RequestLease(key, r, [this, key](StatusOr<Lease> l) {
      EXPECT_EQ(results_.count(key), 0u) << "callback called twice for " << key;
      results_.emplace(key, std::move(l));
    });
  }
  bool Granted(uint64_t key) { return results_.count(key) != 0 && results_.at(key).ok(); }
  const Lease& L(uint64_t key) { return *results_.at(key); }
  Status ResultStatus(uint64_t key) { return results_.at(key).status(); }

  // Registers every launched worker that has not registered yet.
  void RegisterStarted() {
    while (registered_ < launcher_.launched.size()) {
      auto [id, pid] = launcher_.launched[registered_++];
      ASSERT_TRUE(pool_->OnWorkerRegistered(id, pid).ok());
    }
  }

  FakeLauncher launcher_{2000};
  size_t registered_ = 0;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<LeaseManager> manager_;
  std::map<uint64_t, StatusOr<Lease>> results_;
};

TEST_F(LeaseManagerTest, GrantsALeaseOnceAWorkerRegisters) {
  Make(R({{"CPU", 2}}));
  Request(1, R({{"CPU", 1}}));
  EXPECT_FALSE(Granted(1));
  EXPECT_EQ(manager_->num_queued(), 1u);
  EXPECT_EQ(manager_->num_waiting_for_worker(), 1u);
  EXPECT_EQ(manager_->available(), R({{"CPU", 1}}));  // reserved meanwhile
  RegisterStarted();
  ASSERT_TRUE(Granted(1));
  EXPECT_EQ(L(1).worker_id, launcher_.launched[0].first);
  EXPECT_EQ(L(1).resources, R({{"CPU", 1}}));
  EXPECT_EQ(manager_->num_leased(), 1u);
  EXPECT_EQ(manager_->num_queued(), 0u);
  EXPECT_EQ(manager_->total(), R({{"CPU", 2}}));
}

TEST_F(LeaseManagerTest, ReturnedWorkerIsReusedByTheNextLease) {
  Make(R({{"CPU", 2}}));
  Request(1, R({{"CPU", 1}}));
  RegisterStarted();
  ASSERT_TRUE(Granted(1));
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  EXPECT_EQ(manager_->available(), R({{"CPU", 2}}));
  Request(2, R({{"CPU", 1}}));
  ASSERT_TRUE(Granted(2));  // at once: the idle worker
  EXPECT_EQ(L(2).worker_id, L(1).worker_id);
  EXPECT_NE(L(2).lease_id, L(1).lease_id);
  EXPECT_EQ(launcher_.launched.size(), 1u);
}

TEST_F(LeaseManagerTest, ALeaseIsReturnedExactlyOnce) {
  Make(R({{"CPU", 2}}));
  Request(1, R({{"CPU", 1}}));
  RegisterStarted();
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  Status again = manager_->ReturnLease(L(1).lease_id, false);
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->ReturnLease(999, false).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->available(), R({{"CPU", 2}}));  // not added twice
  EXPECT_EQ(pool_->num_idle(), 1);
}

TEST_F(LeaseManagerTest, InfeasibleRequestIsReportedAtOnceNamingTheResource) {
  Make(R({{"CPU", 2}}));
  Request(1, R({{"CPU", 4}}));
  ASSERT_EQ(results_.count(1), 1u);
  Status s = ResultStatus(1);
  EXPECT_EQ(s.code(), StatusCode::kInfeasible);
  EXPECT_NE(s.message().find("{CPU: 4}"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("{CPU: 2}"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("CPU: asked 4, node total 2"), std::string::npos) << s.message();
  Request(2, R({{"CPU", 1}, {"GPU", 1}}));
  EXPECT_EQ(ResultStatus(2).code(), StatusCode::kInfeasible);
  EXPECT_NE(ResultStatus(2).message().find("GPU: asked 1, node total 0"), std::string::npos)
      << ResultStatus(2).message();
  EXPECT_EQ(manager_->num_queued(), 0u);
  EXPECT_TRUE(launcher_.launched.empty());
}

TEST_F(LeaseManagerTest, RequestQueuesUntilALeaseIsReturned) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  RegisterStarted();
  Request(2, R({{"CPU", 1}}));
  EXPECT_FALSE(Granted(2));
  EXPECT_EQ(manager_->num_queued(), 1u);
  EXPECT_EQ(manager_->num_waiting_for_worker(), 0u);
  EXPECT_EQ(launcher_.launched.size(), 1u);
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  ASSERT_TRUE(Granted(2));
  EXPECT_EQ(L(2).worker_id, L(1).worker_id);
  EXPECT_EQ(manager_->num_queued(), 0u);
  EXPECT_TRUE(manager_->available().empty());
}

TEST_F(LeaseManagerTest, CancelQueuedRequest) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  RegisterStarted();
  Request(2, R({{"CPU", 1}}));
  EXPECT_TRUE(manager_->CancelRequest(2));
  EXPECT_EQ(ResultStatus(2).code(), StatusCode::kCancelled);
  EXPECT_FALSE(manager_->CancelRequest(2));
  EXPECT_FALSE(manager_->CancelRequest(1));  // granted, not cancellable
  EXPECT_EQ(manager_->num_queued(), 0u);
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  EXPECT_EQ(manager_->num_leased(), 0u);
  EXPECT_EQ(manager_->available(), R({{"CPU", 1}}));
}

TEST_F(LeaseManagerTest, CancelWhileWaitingForAWorkerFreesResourcesAndKeepsTheWorker) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  ASSERT_EQ(manager_->num_waiting_for_worker(), 1u);
  EXPECT_TRUE(manager_->CancelRequest(1));
  EXPECT_EQ(ResultStatus(1).code(), StatusCode::kCancelled);
  EXPECT_EQ(manager_->available(), R({{"CPU", 1}}));
  EXPECT_EQ(manager_->num_queued(), 0u);
  RegisterStarted();  // the worker arrives for nobody: it goes idle
  EXPECT_EQ(manager_->num_leased(), 0u);
  EXPECT_EQ(pool_->num_idle(), 1);
  results_.erase(1);
  Request(1, R({{"CPU", 1}}));  // the key is free again; the idle worker serves it
  ASSERT_TRUE(Granted(1));
  EXPECT_EQ(launcher_.launched.size(), 1u);
}

TEST_F(LeaseManagerTest, BlockedWorkerReleasesItsCpuSoAnotherLeaseIsGranted) {
  Make(R({{"CPU", 1}, {"GPU", 1}}));
  Request(1, R({{"CPU", 1}, {"GPU", 1}}));
  RegisterStarted();
  ASSERT_TRUE(Granted(1));
  Request(2, R({{"CPU", 1}}));
  EXPECT_FALSE(Granted(2));
  manager_->SetBlocked(L(1).worker_id, true);
  EXPECT_EQ(manager_->available(), R({}));  // CPU went to lease 2; GPU stays held
  RegisterStarted();
  ASSERT_TRUE(Granted(2));
  EXPECT_NE(L(2).worker_id, L(1).worker_id);

  // Unblocking takes the CPU back: available CPU is overdrawn to -1.
  manager_->SetBlocked(L(1).worker_id, false);
  EXPECT_EQ(manager_->available().Get("CPU"), -1.0);
  Request(3, R({{"CPU", 1}}));
  ASSERT_TRUE(manager_->ReturnLease(L(2).lease_id, false).ok());
  EXPECT_FALSE(Granted(3));  // the overdraft is paid off first
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  ASSERT_TRUE(Granted(3));
  ASSERT_TRUE(manager_->ReturnLease(L(3).lease_id, false).ok());
  EXPECT_EQ(manager_->available(), manager_->total());
}

TEST_F(LeaseManagerTest, ReturningABlockedLeaseGivesBackOnlyWhatItStillHolds) {
  Make(R({{"CPU", 2}, {"GPU", 1}}));
  Request(1, R({{"CPU", 1}, {"GPU", 1}}));
  RegisterStarted();
  manager_->SetBlocked(L(1).worker_id, true);
  manager_->SetBlocked(L(1).worker_id, true);  // repeated: ignored
  EXPECT_EQ(manager_->available(), R({{"CPU", 2}}));
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  EXPECT_EQ(manager_->available(), manager_->total());
}

TEST_F(LeaseManagerTest, CustomResources) {
  Make(R({{"CPU", 4}, {"accel", 2}}));
  for (uint64_t k = 1; k <= 3; k++) Request(k, R({{"accel", 1}}));
  RegisterStarted();
  EXPECT_TRUE(Granted(1));
  EXPECT_TRUE(Granted(2));
  EXPECT_FALSE(Granted(3));
  EXPECT_EQ(manager_->available(), R({{"CPU", 4}}));
  Request(4, R({{"CPU", 1}}));  // does not need accel: not blocked behind 3
  RegisterStarted();
  EXPECT_TRUE(Granted(4));
  ASSERT_TRUE(manager_->ReturnLease(L(2).lease_id, false).ok());
  EXPECT_TRUE(Granted(3));
}

TEST_F(LeaseManagerTest, FractionalCpusAddUpExactly) {
  Make(R({{"CPU", 1}}));
  for (uint64_t k = 1; k <= 11; k++) Request(k, R({{"CPU", 0.1}}));
  RegisterStarted();
  for (uint64_t k = 1; k <= 10; k++) EXPECT_TRUE(Granted(k)) << k;
  EXPECT_FALSE(Granted(11));
  EXPECT_TRUE(manager_->available().empty());
  for (uint64_t k = 1; k <= 10; k++) ASSERT_TRUE(manager_->ReturnLease(L(k).lease_id, false).ok());
  EXPECT_TRUE(Granted(11));
  ASSERT_TRUE(manager_->ReturnLease(L(11).lease_id, false).ok());
  EXPECT_EQ(manager_->available(), R({{"CPU", 1}}));
}

TEST_F(LeaseManagerTest, LaterRequestThatFitsIsGrantedAroundABlockedHead) {
  Make(R({{"CPU", 2}}));
  Request(1, R({{"CPU", 1}}));
  Request(2, R({{"CPU", 2}}));  // does not fit while 1 holds a CPU
  Request(3, R({{"CPU", 1}}));
  RegisterStarted();
  EXPECT_TRUE(Granted(1));
  EXPECT_FALSE(Granted(2));
  EXPECT_TRUE(Granted(3));
}

TEST_F(LeaseManagerTest, BypassedRequestBecomesABarrierSoItCannotStarve) {
  Make(R({{"CPU", 2}}), 16, /*max_bypass=*/1);
  Request(1, R({{"CPU", 1}}));
  Request(2, R({{"CPU", 2}}));
  Request(3, R({{"CPU", 1}}));  // passes 2 once: its budget is spent
  RegisterStarted();
  ASSERT_TRUE(Granted(3));
  ASSERT_TRUE(manager_->ReturnLease(L(3).lease_id, false).ok());
  Request(4, R({{"CPU", 1}}));
  EXPECT_FALSE(Granted(4));  // would fit, but 2 goes first now
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  RegisterStarted();
  EXPECT_TRUE(Granted(2));
  EXPECT_FALSE(Granted(4));
  ASSERT_TRUE(manager_->ReturnLease(L(2).lease_id, false).ok());
  EXPECT_TRUE(Granted(4));
}

// Fairness across functions (issue: a task of another function waited
// behind a batch): owner A holds both CPUs and asks again at once; B asks
// after. The lease A gives back goes to B, whose share holds none, not to
// A's earlier request.
TEST_F(LeaseManagerTest, AReturnedLeaseGoesToTheShareHoldingFewerLeasesBeforeAnEarlierRequest) {
  Make(R({{"CPU", 2}}));
  auto request = [this](uint64_t key, uint64_t share) {
    manager_->RequestLease(key, R({{"CPU", 1}}), [this, key](StatusOr<Lease> l) { results_.emplace(key, std::move(l)); },
                           share);
  };
  request(1, /*share A*/ 7);
  request(2, 7);
  RegisterStarted();
  ASSERT_TRUE(Granted(1) && Granted(2));
  request(3, 7);  // A's next request, queued first
  request(4, 9);  // B's
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  EXPECT_TRUE(Granted(4)) << "the share holding no lease goes first";
  EXPECT_FALSE(Granted(3));
  ASSERT_TRUE(manager_->ReturnLease(L(2).lease_id, false).ok());
  EXPECT_TRUE(Granted(3)) << "and A's request is next";
}

TEST_F(LeaseManagerTest, RequestsOfOneShareOrWithoutAShareStayFifo) {
  Make(R({{"CPU", 1}}));
  manager_->RequestLease(1, R({{"CPU", 1}}), [this](StatusOr<Lease> l) { results_.emplace(1, std::move(l)); }, 5);
  RegisterStarted();
  ASSERT_TRUE(Granted(1));
  manager_->RequestLease(2, R({{"CPU", 1}}), [this](StatusOr<Lease> l) { results_.emplace(2, std::move(l)); }, 5);
  Request(3, R({{"CPU", 1}}));  // no share named
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  EXPECT_TRUE(Granted(2)) << "a request without a share is not preferred";
  EXPECT_FALSE(Granted(3));
}

TEST_F(LeaseManagerTest, StrictFifoWhenBypassIsZero) {
  Make(R({{"CPU", 2}}), 16, /*max_bypass=*/0);
  Request(1, R({{"CPU", 1}}));
  Request(2, R({{"CPU", 2}}));
  Request(3, R({{"CPU", 1}}));
  RegisterStarted();
  EXPECT_TRUE(Granted(1));
  EXPECT_FALSE(Granted(3));
}

TEST_F(LeaseManagerTest, WorkerDeathReturnsItsLeaseAndReportsTheLeaseId) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  RegisterStarted();
  Request(2, R({{"CPU", 1}}));
  std::optional<uint64_t> died = manager_->OnWorkerDied(L(1).worker_id);
  EXPECT_EQ(died, L(1).lease_id);
  EXPECT_EQ(pool_->PidOf(L(1).worker_id), std::nullopt);
  EXPECT_EQ(manager_->ReturnLease(L(1).lease_id, false).code(), StatusCode::kInvalidArgument);
  // Request 2 gets the CPU and a fresh worker.
  EXPECT_EQ(manager_->num_waiting_for_worker(), 1u);
  RegisterStarted();
  ASSERT_TRUE(Granted(2));
  EXPECT_NE(L(2).worker_id, L(1).worker_id);
  EXPECT_EQ(manager_->OnWorkerDied(WorkerID::FromRandom()), std::nullopt);
}

TEST_F(LeaseManagerTest, WorkerDyingDuringStartupDoesNotDropTheRequest) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  WorkerID starting = launcher_.launched.at(0).first;
  registered_ = 1;  // never registers
  EXPECT_EQ(manager_->OnWorkerDied(starting), std::nullopt);
  ASSERT_EQ(launcher_.launched.size(), 2u);
  RegisterStarted();
  ASSERT_TRUE(Granted(1));
  EXPECT_EQ(L(1).worker_id, launcher_.launched[1].first);
}

TEST_F(LeaseManagerTest, LaunchFailureFailsTheRequestAndFreesItsResources) {
  Make(R({{"CPU", 1}}));
  launcher_.fail_launches = 1;
  Request(1, R({{"CPU", 1}}));
  ASSERT_EQ(results_.count(1), 1u);
  EXPECT_EQ(ResultStatus(1).code(), StatusCode::kIOError);
  EXPECT_EQ(manager_->available(), R({{"CPU", 1}}));
  EXPECT_EQ(manager_->num_queued(), 0u);
}

TEST_F(LeaseManagerTest, ExitingWorkerIsNotReused) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  RegisterStarted();
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, /*worker_exiting=*/true).ok());
  EXPECT_EQ(pool_->num_idle(), 0);
  manager_->OnWorkerDied(L(1).worker_id);
  Request(2, R({{"CPU", 1}}));
  RegisterStarted();
  ASSERT_TRUE(Granted(2));
  EXPECT_NE(L(2).worker_id, L(1).worker_id);
}

TEST_F(LeaseManagerTest, DuplicateRequestKeyIsRejected) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  manager_->RequestLease(1, R({{"CPU", 1}}), [](StatusOr<Lease> l) {
    EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument);
  });
  EXPECT_EQ(manager_->num_queued(), 1u);
}

TEST_F(LeaseManagerTest, CallbackMayReturnItsLeaseReentrantly) {
  Make(R({{"CPU", 1}}));
  Request(1, R({{"CPU", 1}}));
  RegisterStarted();
  int granted = 0;
  manager_->RequestLease(2, R({{"CPU", 1}}), [&](StatusOr<Lease> l) {
    ASSERT_TRUE(l.ok());
    granted++;
    ASSERT_TRUE(manager_->ReturnLease(l->lease_id, false).ok());  // next one goes
  });
  Request(3, R({{"CPU", 1}}));
  ASSERT_TRUE(manager_->ReturnLease(L(1).lease_id, false).ok());
  EXPECT_EQ(granted, 1);
  ASSERT_TRUE(Granted(3));
  EXPECT_EQ(launcher_.launched.size(), 1u);
  EXPECT_TRUE(manager_->available().empty());
}

TEST_F(LeaseManagerTest, EmptyRequestIsGrantedWithoutResources) {
  Make(R({{"CPU", 1}}));
  Request(1, R({}));
  RegisterStarted();
  ASSERT_TRUE(Granted(1));
  EXPECT_EQ(manager_->available(), R({{"CPU", 1}}));
}

}  // namespace
}  // namespace rayts::raylet
