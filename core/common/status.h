// Status and StatusOr<T>: the one error vocabulary of core/.
//
// Role: every fallible function in core/ returns Status or StatusOr<T>;
// core/ never throws. A Status is a code plus a message; OK carries no
// allocation.
// Thread safety: values are immutable once built; copying is safe from any
// thread.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace rayts {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kOutOfMemory = 4,        // object store full
  kIOError = 5,
  kTimedOut = 6,
  kInfeasible = 7,         // a resource request no node can ever satisfy
  kDisconnected = 8,
  kCancelled = 9,
  kInvalid = 10,           // protocol or state violation
  kObjectLost = 11,
  kWorkerDied = 12,
  kInternal = 13,
  kUnavailable = 14,
  kObjectExists = 15,        // plasma: a sealed copy of this id is already in the store
  kObjectBeingCreated = 16,  // plasma: another client is still writing this id
  kUnauthenticated = 17,     // a TCP peer did not present the cluster's auth token
};
// The highest code (append new codes after it and move this): the addon
// exports every code 0..kLastStatusCode to TypeScript by name.
inline constexpr StatusCode kLastStatusCode = StatusCode::kUnauthenticated;

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status OutOfMemory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status TimedOut(std::string m) { return {StatusCode::kTimedOut, std::move(m)}; }
  static Status Infeasible(std::string m) { return {StatusCode::kInfeasible, std::move(m)}; }
  static Status Disconnected(std::string m) { return {StatusCode::kDisconnected, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Invalid(std::string m) { return {StatusCode::kInvalid, std::move(m)}; }
  static Status ObjectLost(std::string m) { return {StatusCode::kObjectLost, std::move(m)}; }
  static Status WorkerDied(std::string m) { return {StatusCode::kWorkerDied, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const {
    return ok() ? std::string("OK") : std::string(StatusCodeName(code_)) + ": " + msg_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string msg_;
};

inline const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kAlreadyExists: return "AlreadyExists";
    case StatusCode::kOutOfMemory: return "ObjectStoreFull";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kTimedOut: return "TimedOut";
    case StatusCode::kInfeasible: return "Infeasible";
    case StatusCode::kDisconnected: return "Disconnected";
    case StatusCode::kCancelled: return "Cancelled";
    case StatusCode::kInvalid: return "Invalid";
    case StatusCode::kObjectLost: return "ObjectLost";
    case StatusCode::kWorkerDied: return "WorkerDied";
    case StatusCode::kInternal: return "Internal";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kObjectExists: return "ObjectExists";
    case StatusCode::kObjectBeingCreated: return "ObjectBeingCreated";
    case StatusCode::kUnauthenticated: return "Unauthenticated";
  }
  return "Unknown";
}

// CHECK is for true invariants only: a failure is a bug in rayts itself.
#define RAYTS_CHECK(cond)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "rayts: CHECK failed at %s:%d: %s\n", __FILE__,      \
                   __LINE__, #cond);                                            \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

// A value or the Status saying why there is none. Reading the value of a
// non-OK StatusOr is a bug: value(), * and -> CHECK.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // An OK Status carries no value: that is an Internal error, not a value.
  StatusOr(Status s)  // NOLINT: implicit by design
      : status_(s.ok() ? Status(StatusCode::kInternal, "StatusOr made from an OK Status without a value")
                       : std::move(s)) {}
  StatusOr(T v) : value_(std::move(v)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { Check(); return *value_; }
  const T& value() const& { Check(); return *value_; }
  T&& value() && { Check(); return std::move(*value_); }
  T* operator->() { Check(); return &*value_; }
  const T* operator->() const { Check(); return &*value_; }
  T& operator*() { Check(); return *value_; }
  const T& operator*() const { Check(); return *value_; }

 private:
  void Check() const {
    if (!value_.has_value()) {
      std::fprintf(stderr, "rayts: value of a failed StatusOr read: %s\n", status_.ToString().c_str());
      std::abort();
    }
  }
  Status status_;
  std::optional<T> value_;
};

#define RAYTS_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::rayts::Status _s = (expr);           \
    if (!_s.ok()) return _s;               \
  } while (0)

}  // namespace rayts
