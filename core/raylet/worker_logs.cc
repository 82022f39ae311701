#include "core/raylet/worker_logs.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

namespace rayts::raylet {

namespace {

constexpr std::string_view kTaskMarker = "\x1e:task_name:";
constexpr std::string_view kActorMarker = "\x1e:actor_name:";
constexpr char kColor[] = "\x1b[36m";  // cyan, as Ray prints its prefixes
constexpr char kReset[] = "\x1b[0m";

// Writes all of `bytes` to `fd`; a stream that stays full for 100 ms drops
// the rest (the driver's output must not stall the node server).
void WriteAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 100) == 1) continue;
    }
    return;
  }
}

int OpenLog(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

}  // namespace

WorkerLogs::WorkerLogs(asio::io_context& io, Options opts) : io_(io), opts_(std::move(opts)) {
  if (!opts_.dir.empty()) ::mkdir(opts_.dir.c_str(), 0755);  // EEXIST is fine
  color_out_ = ::isatty(opts_.driver_out) == 1;
  color_err_ = ::isatty(opts_.driver_err) == 1;
}

WorkerLogs::~WorkerLogs() {
  for (auto& [p, s] : streams_) {
    asio::error_code ec;
    s->sd.close(ec);
    if (s->file >= 0) ::close(s->file);
    s->file = -1;
  }
}

std::string WorkerLogs::FileName(const WorkerID& id, int pid, bool err) {
  return "worker-" + id.Hex() + "-" + std::to_string(pid) + (err ? ".err" : ".out");
}

void WorkerLogs::Add(const WorkerID& id, int pid, int out_fd, int err_fd) {
  for (int i = 0; i < 2; i++) {
    const bool err = i == 1;
    const int fd = err ? err_fd : out_fd;
    if (fd < 0) continue;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    auto s = std::make_shared<Stream>(io_);
    asio::error_code ec;
    s->sd.assign(fd, ec);
    if (ec) {
      ::close(fd);
      continue;
    }
    s->pid = pid;
    s->err = err;
    if (!opts_.dir.empty()) {
      s->path = opts_.dir + "/" + FileName(id, pid, err);
      s->file = OpenLog(s->path);
    }
    streams_[s.get()] = s;
    Read(s);
  }
}

void WorkerLogs::Read(const std::shared_ptr<Stream>& s) {
  s->sd.async_read_some(asio::buffer(s->buf), [this, s](const asio::error_code& ec, size_t n) {
    if (!streams_.count(s.get())) return;  // drained and closed at shutdown
    if (n > 0) OnBytes(*s, std::string_view(s->buf.data(), n), false);
    if (ec) {
      OnBytes(*s, {}, true);  // EOF (the worker exited) or an error: end the last line
      Close(*s);
      if (s->err && !s->tail.empty()) {
        ended_tails_.emplace_back(s->pid, JoinTail(s->tail));
        if (ended_tails_.size() > kEndedTails) ended_tails_.pop_front();
      }
      streams_.erase(s.get());
      return;
    }
    Read(s);
  });
}

void WorkerLogs::OnBytes(Stream& s, std::string_view data, bool eof) {
  std::string to_file, to_driver;
  size_t start = 0;
  for (size_t i = 0; i < data.size(); i++) {
    if (data[i] != '\n') continue;
    if (s.partial.empty()) {
      Line(s, data.substr(start, i - start), &to_file, &to_driver);
    } else {
      s.partial.append(data.substr(start, i - start));
      Line(s, s.partial, &to_file, &to_driver);
      s.partial.clear();
    }
    start = i + 1;
  }
  s.partial.append(data.substr(start));
  while (s.partial.size() >= kMaxLine) {
    Line(s, std::string_view(s.partial).substr(0, kMaxLine), &to_file, &to_driver);
    s.partial.erase(0, kMaxLine);
  }
  if (eof && !s.partial.empty()) {
    Line(s, s.partial, &to_file, &to_driver);
    s.partial.clear();
  }
  if (!to_file.empty()) WriteFile(s, to_file);
  if (!to_driver.empty()) WriteAll(s.err ? opts_.driver_err : opts_.driver_out, to_driver);
}

void WorkerLogs::Line(Stream& s, std::string_view line, std::string* to_file, std::string* to_driver) {
  if (line.substr(0, kTaskMarker.size()) == kTaskMarker) {
    s.name = std::string(line.substr(kTaskMarker.size()));
    return;
  }
  if (line.substr(0, kActorMarker.size()) == kActorMarker) {
    s.name = std::string(line.substr(kActorMarker.size()));
    return;
  }
  to_file->append(line);
  to_file->push_back('\n');
  if (s.err) {
    s.tail.emplace_back(line.substr(0, kTailLineBytes));
    if (s.tail.size() > kTailLines) s.tail.pop_front();
  }
  if (!opts_.to_driver) return;
  const bool color = s.err ? color_err_ : color_out_;
  if (color) to_driver->append(kColor);
  to_driver->push_back('(');
  if (!s.name.empty()) {
    to_driver->append(s.name);
    to_driver->push_back(' ');
  }
  to_driver->append("pid=" + std::to_string(s.pid) + ")");
  if (color) to_driver->append(kReset);
  to_driver->push_back(' ');
  to_driver->append(line);
  to_driver->push_back('\n');
}

void WorkerLogs::WriteFile(Stream& s, const std::string& bytes) {
  if (s.file < 0) return;
  if (s.file_bytes > 0 && s.file_bytes + bytes.size() > opts_.max_file_bytes) {
    // Rotate: the previous file becomes .1 (replacing an older .1).
    ::close(s.file);
    ::rename(s.path.c_str(), (s.path + ".1").c_str());
    s.file = OpenLog(s.path);
    s.file_bytes = 0;
    if (s.file < 0) return;
  }
  WriteAll(s.file, bytes);
  s.file_bytes += bytes.size();
}

void WorkerLogs::Close(Stream& s) {
  asio::error_code ec;
  s.sd.close(ec);
  if (s.file >= 0) ::close(s.file);
  s.file = -1;
}

bool WorkerLogs::ReadNow(Stream& s) {
  const int fd = s.sd.native_handle();
  for (;;) {
    ssize_t n = ::read(fd, s.buf.data(), s.buf.size());
    if (n > 0) {
      OnBytes(s, std::string_view(s.buf.data(), static_cast<size_t>(n)), false);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // EOF, or nothing more now (a process of the worker's still holds the pipe)
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

std::string WorkerLogs::JoinTail(const std::deque<std::string>& tail) {
  std::string out;
  for (auto& l : tail) {
    if (!out.empty()) out.push_back('\n');
    out += l;
  }
  return out;
}

std::string WorkerLogs::StderrTail(int pid) {
  for (auto& [p, s] : streams_) {
    if (s->pid != pid || !s->err) continue;
    // Its last line may have no newline yet: at EOF it is ended now (the
    // stream's own read handler then finds EOF and closes it as usual).
    if (!ReadNow(*s)) OnBytes(*s, {}, true);
    std::string out = JoinTail(s->tail);
    s->tail.clear();
    return out;
  }
  for (auto it = ended_tails_.begin(); it != ended_tails_.end(); ++it) {
    if (it->first != pid) continue;
    std::string out = std::move(it->second);
    ended_tails_.erase(it);
    return out;
  }
  return "";
}

void WorkerLogs::DrainAll() {
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [p, s] : streams) {
    (void)ReadNow(*s);
    OnBytes(*s, {}, true);
    Close(*s);
  }
}

}  // namespace rayts::raylet
