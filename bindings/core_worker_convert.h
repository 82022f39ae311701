// Value conversion for NativeCoreWorker (core_worker_wrap.cc): bytes from
// JS buffers, task arguments and return values coming in from JS, and the
// batch of core events (CoreWorker::DrainEvents) going out to JS.
// Thread safety: JS thread only (these functions make and read JS values).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindings/napi_api.h"
#include "core/core_worker/core_worker.h"

namespace rayts::bindings {

// The bytes of a Buffer, TypedArray view or (UTF-8) string; nullptr for
// anything else.
std::shared_ptr<const std::string> BytesOf(const Napi::Value& v);

// Parses task arguments: Array<Buffer (by value) | [id, owner] (by ref)>.
// On bad input throws a TypeError into JS and returns false.
bool ParseArgs(Napi::Env env, const Napi::Value& v, std::vector<TaskArgIn>* out);

// One return value (or generator item) reported by JS:
// [data|null, inPlasma, isError, size].
ReturnValue ReturnFrom(const Napi::Value& data, const Napi::Value& in_plasma, const Napi::Value& is_error,
                       const Napi::Value& size);

// The event types by their JS names ({Ready: n, Execute: n, ...}), exported
// as addon.EventType so TypeScript reads the core's numbering.
Napi::Object EventTypes(Napi::Env env);

// The property names of execute events, made once per NativeCoreWorker,
// and the JS strings of recent function hashes and task names: building an
// execute event then defines all its properties in one
// napi_define_properties call, with no string made per property.
class EventKeys {
 public:
  explicit EventKeys(Napi::Env env);
  // Loads the keys for one batch, at its first execute event (their handles
  // live in the caller's scope; a batch of ready ids needs none).
  void Begin(Napi::Env env);
  napi_value key(size_t i) const { return local_[i]; }
  // The JS string for `s`, cached (a small bounded cache: hashes and names
  // repeat for every task of one function).
  napi_value Cached(Napi::Env env, const std::string& s);
  // The JS string of field `field` of the task class `serial` (ExecClass):
  // looked up by number, not by content. `first` (if given) is set when
  // this class was not seen here yet (or no longer cached).
  napi_value ClassString(Napi::Env env, uint64_t serial, size_t field, const std::string& s, bool* first = nullptr);

  enum : size_t {
    kT, kHandle, kTaskId, kFnHash, kFnSource, kModuleUrl, kExportName, kName, kNumReturns, kRetryExceptions,
    kActorId, kActorCreation, kMethod, kMaxConcurrency, kConcurrencyGroups, kReleaseCpu, kArgs, kAttempt, kSkipItems, kCount
  };

 private:
  void Reset(Napi::Env env);
  Napi::Reference<Napi::Array> store_;  // [keys..., cached strings...]
  uint32_t Store(Napi::Env env, napi_value v);
  std::unordered_map<std::string, uint32_t> index_;  // cached string -> index in store_
  std::unordered_map<uint64_t, uint32_t> by_class_;  // serial * kCount + field -> index in store_
  uint32_t next_ = 0;
  napi_value local_[kCount] = {};
};

// Drained core events as the JS array ts/runtime/native.ts reads (NativeEvent):
// kObjectReady as just its key (a latin1 string of the id), every other
// event as an object with its type in `t`.
Napi::Array EventsToJs(Napi::Env env, EventKeys& keys, std::vector<Event>& events);

}  // namespace rayts::bindings
