#include "core/raylet/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

namespace rayts::raylet {

namespace {

constexpr size_t kChildStack = 64 * 1024;
constexpr int kKernelSignals = 64;     // 1..64 (the kernel's _NSIG)
constexpr long kKernelSigsetBytes = 8;  // the kernel's sigset_t

// What the caller and the child share until the child execs.
struct Child {
  const SpawnSpec* spec;
  long parent;
  // Set by the child only when it gives up: the step, and errno.
  volatile int stage;  // 0: none (exec'd, or died before it could say), 1: chdir, 2: execve
  volatile int err;
};

// The kernel's struct sigaction (x86-64 and arm64 alike); all zeros is SIG_DFL.
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};
const KernelSigaction kDefaultAction{};
const uint64_t kNoSignals = 0;

// The child's side, on its own stack in the caller's memory: raw system
// calls only, uninstrumented. Never returns.
__attribute__((no_sanitize("address", "undefined"), noinline)) int ChildMain(void* arg) {
  Child* c = static_cast<Child*>(arg);
  const SpawnSpec* s = c->spec;
  // Die with the calling thread; if the caller is already gone, the parent changed.
  syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (syscall(SYS_getppid) != c->parent) syscall(SYS_exit_group, 127);
  // This process has its own copy of the handlers: reset them, then unblock
  // (the caller blocked everything so that no handler of the host runs here).
  for (int sig = 1; sig <= kKernelSignals; sig++) {
    syscall(SYS_rt_sigaction, sig, &kDefaultAction, nullptr, kKernelSigsetBytes);  // fails harmlessly for KILL/STOP
  }
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &kNoSignals, nullptr, kKernelSigsetBytes);
  if (s->cwd != nullptr && syscall(SYS_chdir, s->cwd) != 0) {
    c->err = errno;
    c->stage = 1;
    syscall(SYS_exit_group, 127);
  }
  // dup3 clears close-on-exec on the copies; the originals go below.
  if (s->stdout_fd >= 0 && s->stdout_fd != 1) syscall(SYS_dup3, s->stdout_fd, 1, 0);
  if (s->stderr_fd >= 0 && s->stderr_fd != 2) syscall(SYS_dup3, s->stderr_fd, 2, 0);
  // Otherwise the child shares the caller's stdout/stderr; the host may
  // have marked them close-on-exec.
  for (int fd = 0; fd <= 2; fd++) {
    long flags = syscall(SYS_fcntl, fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC)) syscall(SYS_fcntl, fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  // Every other fd goes (this process has its own fd table).
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
  {
    struct rlimit rl{};
    unsigned limit = 65536;
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      limit = static_cast<unsigned>(rl.rlim_cur);
    }
    for (unsigned fd = 3; fd < limit; fd++) syscall(SYS_close, fd);
  }
  syscall(SYS_execve, s->path, s->argv, s->envp);
  c->err = errno;
  c->stage = 2;
  syscall(SYS_exit_group, 127);
  return 127;
}

}  // namespace

StatusOr<int> Spawn(const SpawnSpec& spec) {
  void* stack = ::mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    return Status::IOError(std::string("spawn: mmap of the child's stack: ") + strerror(errno));
  }
  Child c{&spec, static_cast<long>(::getpid()), 0, 0};
  // Every signal blocked on this thread while the child shares its memory
  // (raw: glibc's own would keep its internal signals open).
  const uint64_t all = ~uint64_t{0};
  uint64_t old = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, kKernelSigsetBytes);
  // Returns once the child exec'd or exited (CLONE_VFORK).
  const pid_t pid = ::clone(ChildMain, static_cast<char*>(stack) + kChildStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
  const int clone_errno = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, kKernelSigsetBytes);
  ::munmap(stack, kChildStack);
  if (pid < 0) return Status::IOError(std::string("spawn: clone: ") + strerror(clone_errno));
  if (c.stage == 0) return static_cast<int>(pid);
  // The child failed before or at exec and has exited: reap it now.
  int st;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (c.stage == 1) {
    return Status::IOError(std::string("chdir '") + (spec.cwd ? spec.cwd : "") + "': " + strerror(c.err));
  }
  return Status::IOError(std::string("execve '") + spec.path + "': " + strerror(c.err));
}

}  // namespace rayts::raylet
