#include "core/raylet/worker_pool.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

#include "test/core/test_util.h"

namespace rayts::raylet {
namespace {

using test::FakeLauncher;

// Records every PopWorker result.
struct Pops {
  std::vector<StatusOr<WorkerID>> results;
  WorkerPool::PopCallback cb() {
    return [this](StatusOr<WorkerID> w) { results.push_back(std::move(w)); };
  }
};

class WorkerPoolTest : public ::testing::Test {
 protected:
  void Register(size_t i) {
    ASSERT_LT(i, launcher_.launched.size());
    ASSERT_TRUE(pool_->OnWorkerRegistered(launcher_.launched[i].first,
                                          launcher_.launched[i].second).ok());
  }
  WorkerID Launched(size_t i) { return launcher_.launched.at(i).first; }
  void MakePool(int max_workers) { pool_ = std::make_unique<WorkerPool>(&launcher_, max_workers); }

  FakeLauncher launcher_;
  std::unique_ptr<WorkerPool> pool_ = std::make_unique<WorkerPool>(&launcher_, 4);
};

TEST_F(WorkerPoolTest, PrestartedWorkersBecomeIdleWhenTheyRegister) {
  pool_->Prestart(3);
  EXPECT_EQ(launcher_.launched.size(), 3u);
  EXPECT_EQ(pool_->num_starting(), 3);
  EXPECT_EQ(pool_->num_idle(), 0);
  for (size_t i = 0; i < 3; i++) Register(i);
  EXPECT_EQ(pool_->num_starting(), 0);
  EXPECT_EQ(pool_->num_idle(), 3);
  EXPECT_EQ(pool_->AllWorkers().size(), 3u);
  EXPECT_EQ(pool_->PidOf(Launched(1)), launcher_.launched[1].second);
  EXPECT_EQ(pool_->PidOf(WorkerID::FromRandom()), std::nullopt);
}

TEST_F(WorkerPoolTest, IdleWorkersAboveTheSoftLimitAreEndedLongestIdleFirst) {
  using std::chrono::milliseconds;
  MakePool(8);
  pool_->Prestart(4);
  for (size_t i = 0; i < 4; i++) Register(i);
  const auto t = std::chrono::steady_clock::now();
  // Not idle long enough yet.
  EXPECT_TRUE(pool_->IdleWorkersToEnd(t, 2, milliseconds(1000)).empty());
  // A second later: as many as the pool has above the soft limit, longest idle first.
  EXPECT_EQ(pool_->IdleWorkersToEnd(t + milliseconds(1500), 2, milliseconds(1000)),
            (std::vector<WorkerID>{Launched(0), Launched(1)}));
  // A leased worker counts toward the limit but is never chosen.
  Pops pops;
  pool_->PopWorker(pops.cb());  // the most recently idle: worker 3
  ASSERT_EQ(pops.results.size(), 1u);
  EXPECT_EQ(*pops.results[0], Launched(3));
  EXPECT_EQ(pool_->IdleWorkersToEnd(t + milliseconds(1500), 3, milliseconds(1000)),
            (std::vector<WorkerID>{Launched(0)}));
  EXPECT_TRUE(pool_->IdleWorkersToEnd(t + milliseconds(1500), 4, milliseconds(1000)).empty());
  // Choosing changes nothing: the caller ends them.
  EXPECT_EQ(pool_->num_idle(), 3);
}

TEST_F(WorkerPoolTest, PrestartRespectsMaxWorkers) {
  MakePool(2);
  pool_->Prestart(5);
  EXPECT_EQ(launcher_.launched.size(), 2u);
  pool_->Prestart(1);
  EXPECT_EQ(launcher_.launched.size(), 2u);
}

TEST_F(WorkerPoolTest, PopWaitsForRegistration) {
  Pops pops;
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(launcher_.launched.size(), 1u);
  EXPECT_TRUE(pops.results.empty());
  EXPECT_EQ(pool_->num_waiting(), 1);
  Register(0);
  ASSERT_EQ(pops.results.size(), 1u);
  ASSERT_TRUE(pops.results[0].ok());
  EXPECT_EQ(*pops.results[0], Launched(0));
  EXPECT_EQ(pool_->num_idle(), 0);
  EXPECT_EQ(pool_->num_waiting(), 0);
}

TEST_F(WorkerPoolTest, PopTakesAPrestartingWorkerInsteadOfLaunchingAnother) {
  pool_->Prestart(1);
  Pops pops;
  pool_->PopWorker(pops.cb());
  EXPECT_EQ(launcher_.launched.size(), 1u);
  Register(0);
  ASSERT_EQ(pops.results.size(), 1u);
  EXPECT_EQ(*pops.results[0], Launched(0));
}

TEST_F(WorkerPoolTest, IdleWorkerIsReusedWithoutLaunching) {
  Pops pops;
  pool_->PopWorker(pops.cb());
  Register(0);
  pool_->PushIdleWorker(Launched(0));
  EXPECT_EQ(pool_->num_idle(), 1);
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(pops.results.size(), 2u);
  EXPECT_EQ(*pops.results[1], Launched(0));
  EXPECT_EQ(launcher_.launched.size(), 1u);
  EXPECT_EQ(pool_->num_idle(), 0);
}

TEST_F(WorkerPoolTest, WorkerDyingDuringStartupIsReplacedAndTheWaiterKept) {
  Pops pops;
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(launcher_.launched.size(), 1u);
  pool_->OnWorkerDied(Launched(0));
  EXPECT_EQ(launcher_.killed, std::vector<int>{launcher_.launched[0].second});
  ASSERT_EQ(launcher_.launched.size(), 2u);
  EXPECT_TRUE(pops.results.empty());
  EXPECT_EQ(pool_->num_starting(), 1);
  // The dead worker can no longer register.
  EXPECT_EQ(pool_->OnWorkerRegistered(Launched(0), launcher_.launched[0].second).code(),
            StatusCode::kInvalidArgument);
  Register(1);
  ASSERT_EQ(pops.results.size(), 1u);
  EXPECT_EQ(*pops.results[0], Launched(1));
}

// A pool whose clock the test moves (the backoff between start attempts).
class WorkerStartFailureTest : public ::testing::Test {
 protected:
  using ms = std::chrono::milliseconds;
  WorkerStartFailureTest() {
    pool_ = std::make_unique<WorkerPool>(&launcher_, 4, WorkerPool::StartPolicy{3, ms(100), ms(10000)},
                                         [this] { return now_; });
  }
  // The newest launched worker dies before it registers.
  void FailNewest(const std::string& cause = "exited with code 9") {
    ASSERT_FALSE(launcher_.launched.empty());
    pool_->OnWorkerStartFailed(launcher_.launched.back().first, cause);
  }
  size_t Launches() const { return launcher_.launched.size(); }
  void Register(size_t i) {
    ASSERT_LT(i, Launches());
    ASSERT_TRUE(pool_->OnWorkerRegistered(launcher_.launched[i].first, launcher_.launched[i].second).ok());
  }

  FakeLauncher launcher_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  std::unique_ptr<WorkerPool> pool_;
};

TEST_F(WorkerStartFailureTest, StartsBackOffAndTheWaiterFailsWithTheCauseAfterThreeAttempts) {
  Pops pops;
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(Launches(), 1u);
  FailNewest();
  EXPECT_EQ(pool_->start_failures(), 1);
  EXPECT_EQ(Launches(), 1u);  // not at once: 100 ms backoff
  now_ += ms(99);
  pool_->Tick();
  EXPECT_EQ(Launches(), 1u);
  now_ += ms(1);
  pool_->Tick();
  ASSERT_EQ(Launches(), 2u);
  FailNewest();
  now_ += ms(199);  // the backoff doubled
  pool_->Tick();
  EXPECT_EQ(Launches(), 2u);
  now_ += ms(1);
  pool_->Tick();
  ASSERT_EQ(Launches(), 3u);
  EXPECT_TRUE(pops.results.empty());
  FailNewest("exited with code 9; its last stderr lines:\n  node: bad option: --bogus");
  ASSERT_EQ(pops.results.size(), 1u);
  EXPECT_EQ(pops.results[0].status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(pops.results[0].status().message(),
            "worker processes for this task could not start (3 attempts): exited with code 9; its last stderr "
            "lines:\n  node: bad option: --bogus");
  EXPECT_EQ(pool_->num_waiting(), 0);
  EXPECT_TRUE(pool_->AllWorkers().empty());
  // No respawning for nobody.
  now_ += ms(5000);
  pool_->Tick();
  EXPECT_EQ(Launches(), 3u);
  // A later request tries again, at once and with every attempt.
  EXPECT_EQ(pool_->start_failures(), 0);
  pool_->PopWorker(pops.cb());
  EXPECT_EQ(Launches(), 4u);
  Register(3);
  ASSERT_EQ(pops.results.size(), 2u);
  EXPECT_EQ(*pops.results[1], launcher_.launched[3].first);
}

TEST_F(WorkerStartFailureTest, ARegistrationResetsTheCount) {
  Pops pops;
  pool_->PopWorker(pops.cb());
  FailNewest();
  now_ += ms(100);
  pool_->Tick();
  FailNewest();
  EXPECT_EQ(pool_->start_failures(), 2);
  now_ += ms(200);
  pool_->Tick();
  ASSERT_EQ(Launches(), 3u);
  Register(2);
  EXPECT_EQ(pool_->start_failures(), 0);
  ASSERT_EQ(pops.results.size(), 1u);
  EXPECT_TRUE(pops.results[0].ok());
  // The next failure is the first of a new run: it backs off, fails nobody.
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(Launches(), 4u);
  FailNewest();
  EXPECT_EQ(pool_->start_failures(), 1);
  EXPECT_EQ(pops.results.size(), 1u);
  EXPECT_EQ(pool_->num_waiting(), 1);
}

TEST_F(WorkerStartFailureTest, FailuresFarApartAreForgotten) {
  pool_->Prestart(1);
  FailNewest();
  now_ += ms(10000);
  pool_->Prestart(1);
  FailNewest();
  EXPECT_EQ(pool_->start_failures(), 1);
}

TEST_F(WorkerStartFailureTest, EveryWaiterFailsAtTheGiveUpAndADeadRegisteredWorkerIsNoStartFailure) {
  Pops pops;
  pool_->PopWorker(pops.cb());
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(Launches(), 2u);
  Register(0);  // serves the first waiter
  ASSERT_EQ(pops.results.size(), 1u);
  pool_->OnWorkerStartFailed(launcher_.launched[0].first, "registered: ignored");
  EXPECT_EQ(pool_->start_failures(), 0);
  FailNewest();
  for (int i = 0; i < 2; i++) {
    now_ += ms(1000);
    pool_->Tick();
    FailNewest();
  }
  ASSERT_EQ(pops.results.size(), 2u);
  EXPECT_EQ(pops.results[1].status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(pool_->num_waiting(), 0);
  EXPECT_EQ(pool_->AllWorkers(), std::vector<WorkerID>{launcher_.launched[0].first});  // the leased one stays
}

TEST_F(WorkerPoolTest, AStartingWorkerIsFoundByItsPidForTheReaper) {
  // The node server's reaper knows only the pid of a worker that died
  // before registering; without this lookup the pool waited for it forever.
  Pops pops;
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(launcher_.launched.size(), 1u);
  int pid = launcher_.launched[0].second;
  auto id = pool_->WorkerOfPid(pid);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id, Launched(0));
  EXPECT_FALSE(pool_->WorkerOfPid(pid + 100).has_value());
  pool_->OnWorkerDied(*id);
  EXPECT_FALSE(pool_->WorkerOfPid(pid).has_value());
  ASSERT_EQ(launcher_.launched.size(), 2u);  // replaced for the waiter
  Register(1);
  ASSERT_EQ(pops.results.size(), 1u);
}

TEST_F(WorkerPoolTest, MaxWorkersIsRespectedAndWaitersGetReturnedWorkers) {
  MakePool(2);
  Pops pops;
  for (int i = 0; i < 3; i++) pool_->PopWorker(pops.cb());
  EXPECT_EQ(launcher_.launched.size(), 2u);
  Register(0);
  Register(1);
  ASSERT_EQ(pops.results.size(), 2u);
  EXPECT_EQ(pool_->num_waiting(), 1);
  pool_->PushIdleWorker(Launched(0));
  ASSERT_EQ(pops.results.size(), 3u);
  EXPECT_EQ(*pops.results[2], Launched(0));
  EXPECT_EQ(launcher_.launched.size(), 2u);
}

TEST_F(WorkerPoolTest, DeathOfALeasedWorkerAtTheCapStartsAReplacementForWaiters) {
  MakePool(1);
  Pops pops;
  pool_->PopWorker(pops.cb());
  Register(0);
  pool_->PopWorker(pops.cb());
  EXPECT_EQ(launcher_.launched.size(), 1u);
  pool_->OnWorkerDied(Launched(0));
  ASSERT_EQ(launcher_.launched.size(), 2u);
  Register(1);
  ASSERT_EQ(pops.results.size(), 2u);
  EXPECT_EQ(*pops.results[1], Launched(1));
  EXPECT_EQ(pool_->AllWorkers(), std::vector<WorkerID>{Launched(1)});
}

TEST_F(WorkerPoolTest, WaitersAreServedOldestFirst) {
  std::vector<int> order;
  for (int i = 0; i < 3; i++) {
    pool_->PopWorker([&order, i](StatusOr<WorkerID> w) { order.push_back(i); });
  }
  Register(2);
  Register(0);
  Register(1);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST_F(WorkerPoolTest, RegistrationOfUnknownOrDuplicateOrWrongPidIsRejected) {
  EXPECT_EQ(pool_->OnWorkerRegistered(WorkerID::FromRandom(), 5).code(),
            StatusCode::kInvalidArgument);
  pool_->Prestart(1);
  EXPECT_EQ(pool_->OnWorkerRegistered(Launched(0), 4242).code(), StatusCode::kInvalidArgument);
  Register(0);
  EXPECT_EQ(pool_->OnWorkerRegistered(Launched(0), launcher_.launched[0].second).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->num_idle(), 1);
}

TEST_F(WorkerPoolTest, LaunchFailureFailsTheWaiter) {
  launcher_.fail_launches = 1;
  Pops pops;
  pool_->PopWorker(pops.cb());
  ASSERT_EQ(pops.results.size(), 1u);
  EXPECT_EQ(pops.results[0].status().code(), StatusCode::kIOError);
  EXPECT_EQ(pool_->num_waiting(), 0);
  EXPECT_TRUE(pool_->AllWorkers().empty());
  pool_->PopWorker(pops.cb());  // the next launch succeeds
  EXPECT_EQ(launcher_.launched.size(), 1u);
}

TEST_F(WorkerPoolTest, BlockedWorkerDoesNotCountAgainstTheCap) {
  MakePool(1);
  Pops pops;
  pool_->PopWorker(pops.cb());
  Register(0);
  pool_->PopWorker(pops.cb());
  EXPECT_EQ(launcher_.launched.size(), 1u);
  pool_->SetWorkerBlocked(Launched(0), true);
  ASSERT_EQ(launcher_.launched.size(), 2u);
  Register(1);
  EXPECT_EQ(pops.results.size(), 2u);
  pool_->SetWorkerBlocked(Launched(0), false);  // over the cap for now
  pool_->PopWorker(pops.cb());
  EXPECT_EQ(launcher_.launched.size(), 2u);  // waits: at the cap
  pool_->PushIdleWorker(Launched(1));
  EXPECT_EQ(pops.results.size(), 3u);
}

TEST_F(WorkerPoolTest, KillAllKillsEveryWorkerAndCancelsWaiters) {
  MakePool(2);
  Pops pops;
  pool_->Prestart(1);
  Register(0);
  pool_->PopWorker(pops.cb());  // takes the idle one
  pool_->PopWorker(pops.cb());  // launches
  pool_->PopWorker(pops.cb());  // waits at the cap
  pool_->KillAll();
  EXPECT_EQ(launcher_.killed.size(), 2u);
  EXPECT_TRUE(pool_->AllWorkers().empty());
  ASSERT_EQ(pops.results.size(), 3u);
  EXPECT_EQ(pops.results[1].status().code(), StatusCode::kCancelled);
  EXPECT_EQ(pops.results[2].status().code(), StatusCode::kCancelled);
}

TEST_F(WorkerPoolTest, CallbackMayPopAgainReentrantly) {
  Pops pops;
  pool_->PopWorker([&](StatusOr<WorkerID> w) {
    pool_->PushIdleWorker(*w);
    pool_->PopWorker(pops.cb());
  });
  Register(0);
  ASSERT_EQ(pops.results.size(), 1u);
  EXPECT_EQ(*pops.results[0], Launched(0));
  EXPECT_EQ(launcher_.launched.size(), 1u);
}

// ---- ProcessWorkerLauncher: real processes, no sleeps. ---------------------

// Polls Reap until `pid` has exited; bounded by a deadline, not a sleep.
std::optional<int> WaitForExit(ProcessWorkerLauncher& launcher, int pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<std::pair<int, int>> exited;
  while (std::chrono::steady_clock::now() < deadline) {
    EXPECT_TRUE(launcher.Reap(&exited).ok());
    for (auto& [p, code] : exited) {
      if (p == pid) return code;
    }
    sched_yield();
  }
  return std::nullopt;
}

TEST(ProcessWorkerLauncherTest, LaunchesBinTrueAndReapsItsExit) {
  ProcessWorkerLauncher launcher({{"/bin/true"}, {}, ""});
  StatusOr<int> pid = launcher.Launch(WorkerID::FromRandom());
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_GT(*pid, 0);
  EXPECT_EQ(launcher.num_running(), 1u);
  EXPECT_EQ(WaitForExit(launcher, *pid), 0);
  EXPECT_EQ(launcher.num_running(), 0u);
}

TEST(ProcessWorkerLauncherTest, ChildGetsWorkerIdEnvWorkingDirAndNoInheritedFds) {
  int stray = open("/dev/null", O_RDONLY);  // no O_CLOEXEC: the child must close it
  ASSERT_GE(stray, 3);
  WorkerID id = WorkerID::FromRandom();
  std::string fd = std::to_string(stray);
  std::string script = "[ \"$RAYTS_WORKER_ID\" = " + id.Hex() + " ] || exit 1; "
                       "[ \"$FOO\" = bar ] || exit 2; "
                       "[ \"$(pwd -P)\" = \"$(cd /tmp && pwd -P)\" ] || exit 3; "
                       "[ -e /proc/$$/fd/" + fd + " ] && exit 4; exit 7";
  ProcessWorkerLauncher launcher(
      {{"/bin/sh", "-c", script}, {"FOO=bar", "RAYTS_WORKER_ID=stale"}, "/tmp"});
  StatusOr<int> pid = launcher.Launch(id);
  close(stray);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(WaitForExit(launcher, *pid), 7);
}

TEST(ProcessWorkerLauncherTest, ExecFailureIsReportedByLaunch) {
  ProcessWorkerLauncher launcher({{"/nonexistent/rayts-worker"}, {}, ""});
  StatusOr<int> pid = launcher.Launch(WorkerID::FromRandom());
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.status().code(), StatusCode::kIOError);
  EXPECT_NE(pid.status().message().find("/nonexistent/rayts-worker"), std::string::npos);
  EXPECT_EQ(launcher.num_running(), 0u);

  ProcessWorkerLauncher bad_dir({{"/bin/true"}, {}, "/nonexistent-dir"});
  EXPECT_EQ(bad_dir.Launch(WorkerID::FromRandom()).status().code(), StatusCode::kIOError);
  EXPECT_EQ(ProcessWorkerLauncher({{}, {}, ""}).Launch(WorkerID::FromRandom()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ProcessWorkerLauncherTest, ChildStartsWithNoSignalBlockedOrIgnored) {
  // The launching thread blocks one signal and ignores another; the worker
  // starts with neither.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  struct sigaction ign{}, old_usr1{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGUSR1, &ign, &old_usr1), 0);
  // The shell reads its own status with builtins only: a grep child read
  // the shell's mask while dash had every signal blocked around its fork
  // (a race on a busy machine: CI saw SigBlk set once).
  ProcessWorkerLauncher launcher({{"/bin/sh", "-c",
                                   "while read -r k v; do case $k in SigBlk:) b=$v;; SigIgn:) i=$v;; esac; "
                                   "done < /proc/self/status; "
                                   "[ \"$b\" = 0000000000000000 ] || exit 1; [ \"$i\" = 0000000000000000 ] || exit 2; exit 7"},
                                  {},
                                  ""});
  StatusOr<int> pid = launcher.Launch(WorkerID::FromRandom());
  sigaction(SIGUSR1, &old_usr1, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(WaitForExit(launcher, *pid), 7);
}

// Regression: workers were forked, which write-protects every private page
// of the host (a Node driver), so each first write after a launch faulted
// (and the fork held the host's mmap lock while it copied the page tables).
TEST(ProcessWorkerLauncherTest, LaunchLeavesTheCallersMemoryAsItWas) {
  const size_t size = 32u << 20;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto* mem = static_cast<volatile uint8_t*>(
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  for (size_t off = 0; off < size; off += page) mem[off] = 1;  // resident and writable
  auto minor_faults = [] {
    struct rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_minflt;
  };
  ProcessWorkerLauncher launcher({{"/bin/true"}, {}, ""});
  StatusOr<int> pid = launcher.Launch(WorkerID::FromRandom());
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  const long before = minor_faults();
  for (size_t off = 0; off < size; off += page) mem[off] = 2;
  const long faults = minor_faults() - before;
  EXPECT_LT(faults, 64) << "writes after a launch faulted on " << faults << " of " << size / page << " pages";
  EXPECT_EQ(WaitForExit(launcher, *pid), 0);
  munmap(const_cast<uint8_t*>(mem), size);
}

TEST(ProcessWorkerLauncherTest, KillSendsSigkill) {
  ProcessWorkerLauncher launcher({{"/bin/sleep", "1000"}, {}, ""});
  StatusOr<int> pid = launcher.Launch(WorkerID::FromRandom());
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  launcher.Kill(*pid);
  EXPECT_EQ(WaitForExit(launcher, *pid), -SIGKILL);
  launcher.Kill(*pid);  // reaped: no longer ours to signal; a no-op
}

}  // namespace
}  // namespace rayts::raylet
