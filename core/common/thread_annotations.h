// Thread-safety annotations checked by clang's -Wthread-safety (CI builds
// core/ with clang and makes them errors), and a Mutex the analysis knows.
//
// Role: GUARDED_BY(mu) on a member says it is only touched with mu held;
// REQUIRES(mu) on a method says its caller holds mu; EXCLUDES(mu) that it
// must not. libstdc++'s std::mutex carries no annotations, so shared state
// is guarded by rayts::Mutex (a std::mutex with them) and locked with
// MutexLock. Other compilers see empty macros.
// Thread safety: Mutex and MutexLock are what they say; the macros are
// compile-time only.
#pragma once

#include <mutex>

#if defined(__clang__)
#define RAYTS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define RAYTS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) RAYTS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY RAYTS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) RAYTS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) RAYTS_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) RAYTS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) RAYTS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) RAYTS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define EXCLUDES(...) RAYTS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS RAYTS_THREAD_ANNOTATION(no_thread_safety_analysis)
#define ASSERT_CAPABILITY(x) RAYTS_THREAD_ANNOTATION(assert_capability(x))

namespace rayts {

class CAPABILITY("mutex") Mutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // For std::condition_variable_any and std::unique_lock (BasicLockable).
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

}  // namespace rayts
