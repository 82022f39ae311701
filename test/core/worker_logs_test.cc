#include "core/raylet/worker_logs.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>


namespace rayts::raylet {
namespace {

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Everything readable from a nonblocking fd right now.
std::string ReadAvailable(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void WriteText(int fd, const std::string& s) { ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size())); }

// A WorkerLogs over a temp logs dir, with the "driver's" stdout and stderr
// as pipes the test reads; one fake worker whose stdout/stderr are pipes.
class WorkerLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/rayts-worker-logs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    ASSERT_EQ(::pipe2(driver_out_, O_NONBLOCK | O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(driver_err_, O_NONBLOCK | O_CLOEXEC), 0);
  }
  void TearDown() override {
    logs_.reset();
    for (int fd : {driver_out_[0], driver_out_[1], driver_err_[0], driver_err_[1], w_out_, w_err_})
      if (fd >= 0) ::close(fd);
    std::system(("rm -rf " + dir_).c_str());
  }
  void Start(bool to_driver, uint64_t max_bytes = 1 << 20) {
    logs_ = std::make_unique<WorkerLogs>(
        io_, WorkerLogs::Options{dir_ + "/logs", to_driver, max_bytes, driver_out_[1], driver_err_[1]});
    int o[2], e[2];
    ASSERT_EQ(::pipe2(o, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(e, O_CLOEXEC), 0);
    logs_->Add(id_, 4242, o[0], e[0]);
    w_out_ = o[1];
    w_err_ = e[1];
  }
  // Runs the io context until the handlers queued so far (and the reads
  // they complete) are done.
  void Pump() {
    for (int i = 0; i < 50; i++) {
      io_.restart();
      io_.poll();
    }
  }
  std::string OutFile() { return ReadFileText(dir_ + "/logs/" + WorkerLogs::FileName(id_, 4242, false)); }
  std::string ErrFile() { return ReadFileText(dir_ + "/logs/" + WorkerLogs::FileName(id_, 4242, true)); }

  asio::io_context io_;
  std::string dir_;
  int driver_out_[2] = {-1, -1}, driver_err_[2] = {-1, -1};
  int w_out_ = -1, w_err_ = -1;
  WorkerID id_ = WorkerID::FromRandom();
  std::unique_ptr<WorkerLogs> logs_;
};

TEST_F(WorkerLogsTest, LinesGetTheNameOfTheLatestMarkerAndTheFileGetsThemBare) {
  Start(true);
  WriteText(w_out_, "before any task\n\x1e:task_name:square\nhello ");
  Pump();
  WriteText(w_out_, "world\n");
  WriteText(w_err_, "\x1e:actor_name:Counter\noops\n");
  Pump();
  EXPECT_EQ(ReadAvailable(driver_out_[0]), "(pid=4242) before any task\n(square pid=4242) hello world\n");
  EXPECT_EQ(ReadAvailable(driver_err_[0]), "(Counter pid=4242) oops\n");
  EXPECT_EQ(OutFile(), "before any task\nhello world\n");
  EXPECT_EQ(ErrFile(), "oops\n");
}

TEST_F(WorkerLogsTest, ToDriverOffWritesOnlyTheFiles) {
  Start(false);
  WriteText(w_out_, "quiet\n");
  Pump();
  EXPECT_EQ(ReadAvailable(driver_out_[0]), "");
  EXPECT_EQ(OutFile(), "quiet\n");
}

TEST_F(WorkerLogsTest, TheLastLineIsEndedWhenTheWorkerExits) {
  Start(true);
  WriteText(w_out_, "no newline at the end");
  ::close(w_out_);  // the worker is gone
  w_out_ = -1;
  Pump();
  EXPECT_EQ(ReadAvailable(driver_out_[0]), "(pid=4242) no newline at the end\n");
  EXPECT_EQ(logs_->num_streams(), 1u);  // its stderr is still open
}

TEST_F(WorkerLogsTest, DrainAllReadsWhatIsLeftWithoutTheLoopRunning) {
  Start(true);
  WriteText(w_out_, "printed just before shutdown\n");
  WriteText(w_err_, "and on stderr");
  logs_->DrainAll();  // no Pump: the io loop never saw these bytes
  EXPECT_EQ(ReadAvailable(driver_out_[0]), "(pid=4242) printed just before shutdown\n");
  EXPECT_EQ(ReadAvailable(driver_err_[0]), "(pid=4242) and on stderr\n");
  EXPECT_EQ(logs_->num_streams(), 0u);
  Pump();  // the cancelled reads find nothing to do
}

TEST_F(WorkerLogsTest, FilesAreRotatedPastTheLimit) {
  Start(false, 100);
  const std::string line(39, 'a');  // 40 bytes with its newline
  for (int i = 0; i < 5; i++) {
    WriteText(w_out_, line + "\n");
    Pump();
  }
  // 5 lines of 40 bytes, at most 100 per file: .1 holds two, the file one.
  EXPECT_EQ(ReadFileText(dir_ + "/logs/" + WorkerLogs::FileName(id_, 4242, false) + ".1"), line + "\n" + line + "\n");
  EXPECT_EQ(OutFile(), line + "\n");
}

}  // namespace
}  // namespace rayts::raylet
