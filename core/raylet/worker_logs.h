// WorkerLogs: the stdout and stderr of the node's worker processes.
//
// Role: the launcher gives each worker a pipe for stdout and one for stderr
// (ProcessWorkerLauncher::Config::on_output); WorkerLogs reads their other
// ends on the node server's io thread, splits the bytes into lines, writes
// every line to the worker's log file in the session directory
// (`logs/worker-<id>-<pid>.out` / `.err`, rotated to `.1` past
// max_file_bytes, so each stream keeps at most twice that) and, unless
// to_driver is off, to the driver's stdout / stderr with Ray's prefix:
// `(name pid=123) line`, coloured when that stream is a terminal. The name
// comes from marker lines the worker writes before a task's first output
// (`\x1e:task_name:<name>` or `\x1e:actor_name:<ClassName>`,
// ts/worker/log_prefix.ts); markers are consumed, not printed.
// A worker's output is never dropped when it exits: the pipe is read to its
// end; DrainAll reads what is left in every pipe at shutdown.
// Crash causes: the last kTailLines lines of each worker's stderr are kept
// (also for a while after its pipe closed), and StderrTail reads its pipe
// to the end first, so a worker's last words reach the owner's
// WorkerCrashedError.
// Ownership: owns the read ends (asio descriptors) and the log files.
// Thread safety: none; every method runs on the io thread that owns `io`.
// Invariants: each stream's bytes reach its file in order, as whole lines
// (a line longer than kMaxLine is cut into kMaxLine pieces; a last line
// without a newline is ended at EOF).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/common/asio.h"

#include "core/common/id.h"

namespace rayts::raylet {

class WorkerLogs {
 public:
  static constexpr size_t kMaxLine = 64 * 1024;
  // The stderr tail kept per worker: this many lines, each cut to kTailLineBytes.
  static constexpr size_t kTailLines = 10;
  static constexpr size_t kTailLineBytes = 512;
  // Tails of closed streams kept for StderrTail (the oldest go first).
  static constexpr size_t kEndedTails = 64;
  struct Options {
    std::string dir;                         // the session's logs/ directory (made if absent)
    bool to_driver = true;                   // also print to driver_out / driver_err
    uint64_t max_file_bytes = 16ull << 20;   // per file, before it is rotated to .1
    int driver_out = 1;
    int driver_err = 2;
  };

  WorkerLogs(asio::io_context& io, Options opts);
  ~WorkerLogs();
  WorkerLogs(const WorkerLogs&) = delete;
  WorkerLogs& operator=(const WorkerLogs&) = delete;

  // Takes the read ends of a new worker's stdout and stderr pipes.
  void Add(const WorkerID& id, int pid, int out_fd, int err_fd);
  // Shutdown: reads what the pipes hold now (to EOF for workers that have
  // exited), prints and writes it, and closes every pipe and file.
  void DrainAll();
  size_t num_streams() const { return streams_.size(); }
  // The last lines worker `pid` wrote to stderr ('\n'-separated, empty if
  // none): its pipe is read first to what it holds now, so a worker that
  // has exited gives its very last lines. The tail is forgotten afterwards.
  std::string StderrTail(int pid);
  // The log file of a stream, for tests and messages.
  static std::string FileName(const WorkerID& id, int pid, bool err);

 private:
  struct Stream {
    explicit Stream(asio::io_context& io) : sd(io) {}
    asio::posix::stream_descriptor sd;
    int pid = 0;
    bool err = false;
    std::string name;     // from the latest marker
    std::string partial;  // bytes after the last newline
    std::deque<std::string> tail;  // stderr only: the last kTailLines lines
    std::string path;
    int file = -1;
    uint64_t file_bytes = 0;
    std::array<char, 16 * 1024> buf{};
  };
  void Read(const std::shared_ptr<Stream>& s);
  // Splits `data` into lines and writes them (one write per destination).
  void OnBytes(Stream& s, std::string_view data, bool eof);
  void Line(Stream& s, std::string_view line, std::string* to_file, std::string* to_driver);
  void WriteFile(Stream& s, const std::string& bytes);
  void Close(Stream& s);
  // Reads what the pipe holds now (to EOF for an exited worker); false at EOF or on an error.
  bool ReadNow(Stream& s);
  static std::string JoinTail(const std::deque<std::string>& tail);

  asio::io_context& io_;
  Options opts_;
  bool color_out_ = false;
  bool color_err_ = false;
  std::unordered_map<Stream*, std::shared_ptr<Stream>> streams_;
  std::deque<std::pair<int, std::string>> ended_tails_;  // (pid, tail) of closed stderr streams
};

}  // namespace rayts::raylet
