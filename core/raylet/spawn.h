// Spawn: starts a child process that execs a program, without copying the
// caller's address space.
//
// Role: the worker launcher's way to start a process. fork() in a host as
// large as a Node driver copies its page tables while holding its mmap lock
// (every page fault, mmap and brk of the host's other threads, its JS thread
// included, waits meanwhile), and write-protects every private page, so each
// first write by the host after a fork takes a fault. Spawn instead runs the
// child's setup on a small stack of its own in the caller's memory
// (clone(CLONE_VM | CLONE_VFORK), as posix_spawn does), and the calling
// thread resumes once the child has exec'd or failed. The child asks for
// SIGKILL when the calling thread exits (PR_SET_PDEATHSIG), resets its
// signal mask and dispositions, changes directory, makes stdout/stderr the
// given fds, closes every other fd >= 3 and execs; a failure before or at
// exec is reported back through memory the two share and Spawn returns it.
// The child's side makes raw system calls only (no allocation, no libc
// state, nothing a sanitizer intercepts): it runs in the caller's memory.
// Thread safety: any thread; only the calling thread is suspended while the
// child sets up. The caller's signals are blocked on that thread meanwhile
// (so the child never runs one of the host's handlers) and restored.
#pragma once

#include <string>

#include "core/common/status.h"

namespace rayts::raylet {

struct SpawnSpec {
  const char* path;    // executable (no PATH search)
  char* const* argv;   // null-terminated
  char* const* envp;   // null-terminated
  const char* cwd;     // nullptr: inherit
  int stdout_fd = -1;  // >= 0: becomes the child's fd 1
  int stderr_fd = -1;  // >= 0: becomes the child's fd 2
};

// Returns the child's pid once it has exec'd. A child that failed before
// exec has been reaped; the error names the step (chdir, execve) and errno.
StatusOr<int> Spawn(const SpawnSpec& spec);

}  // namespace rayts::raylet
