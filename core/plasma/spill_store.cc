#include "core/plasma/spill_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace rayts::plasma {

namespace {

std::string Errno() { return std::strerror(errno); }

// mkdir -p: creates every missing component of `path`.
Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("spill directory path is empty");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IOError("cannot create spill directory " + cur + ": " + Errno());
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::IOError("spill directory " + path + " is not a directory");
  }
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<SpillStore>> SpillStore::Create(const std::string& parent, int64_t max_bytes) {
  RAYTS_RETURN_IF_ERROR(MakeDirs(parent));
  std::string templ = parent + (parent.back() == '/' ? "" : "/") + "spill_XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return Status::IOError("cannot create a spill directory under " + parent + ": " + Errno());
  }
  std::string dir(buf.data());
  uint64_t limit = 0;
  if (max_bytes >= 0) {
    limit = static_cast<uint64_t>(max_bytes);
  } else {
    struct statvfs vfs;
    if (::statvfs(dir.c_str(), &vfs) != 0) {
      ::rmdir(dir.c_str());
      return Status::IOError("cannot read the free space of " + dir + ": " + Errno());
    }
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    const uint64_t margin = std::min<uint64_t>(free_bytes / 10, 1ull << 30);
    limit = free_bytes - margin;
  }
  return std::unique_ptr<SpillStore>(new SpillStore(std::move(dir), limit));
}

SpillStore::~SpillStore() {
  for (const auto& [id, size] : files_) ::unlink(PathOf(id).c_str());
  // Anything else left behind (e.g. a partial file of a crashed write).
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink((dir_ + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir_.c_str());
}

std::string SpillStore::PathOf(const ObjectID& id) const { return dir_ + "/" + id.Hex(); }

Status SpillStore::Write(const ObjectID& id, const uint8_t* data, uint64_t size) {
  if (files_.count(id)) return Status::AlreadyExists("object " + id.Hex() + " is already spilled");
  if (!Fits(size)) {
    return Status::OutOfMemory("spilling object " + id.Hex() + " of " + std::to_string(size) +
                               " bytes would pass the spill limit: " + std::to_string(used_) + " of " +
                               std::to_string(limit_) + " bytes used");
  }
  const std::string path = PathOf(id);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot create spill file " + path + ": " + Errno());
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, std::min<uint64_t>(size - done, 1ull << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Status::IOError("cannot write spill file " + path + ": " + (n < 0 ? Errno() : "short write"));
      ::close(fd);
      ::unlink(path.c_str());
      return s;
    }
    done += static_cast<uint64_t>(n);
  }
  if (::close(fd) != 0) {
    Status s = Status::IOError("cannot close spill file " + path + ": " + Errno());
    ::unlink(path.c_str());
    return s;
  }
  files_[id] = size;
  used_ += size;
  return Status::OK();
}

Status SpillStore::Read(const ObjectID& id, uint8_t* dst, uint64_t size) const {
  auto it = files_.find(id);
  if (it == files_.end()) return Status::NotFound("object " + id.Hex() + " is not spilled");
  if (it->second != size) {
    return Status::Internal("spill file of " + id.Hex() + " holds " + std::to_string(it->second) +
                            " bytes, expected " + std::to_string(size));
  }
  return ReadRange(id, 0, dst, size);
}

Status SpillStore::ReadRange(const ObjectID& id, uint64_t offset, uint8_t* dst, uint64_t size) const {
  auto it = files_.find(id);
  if (it == files_.end()) return Status::NotFound("object " + id.Hex() + " is not spilled");
  if (offset > it->second || size > it->second - offset) {
    return Status::Invalid("spill file of " + id.Hex() + " holds " + std::to_string(it->second) +
                           " bytes: cannot read " + std::to_string(size) + " from " + std::to_string(offset));
  }
  const std::string path = PathOf(id);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open spill file " + path + ": " + Errno());
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, dst + done, std::min<uint64_t>(size - done, 1ull << 30), static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Status::IOError("cannot read spill file " + path + ": " + (n < 0 ? Errno() : "file is truncated"));
      ::close(fd);
      return s;
    }
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return Status::OK();
}

void SpillStore::Remove(const ObjectID& id) {
  auto it = files_.find(id);
  if (it == files_.end()) return;
  ::unlink(PathOf(id).c_str());
  used_ -= it->second;
  files_.erase(it);
}

}  // namespace rayts::plasma
