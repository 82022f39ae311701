// Value conversion for NativeCoreWorker (core_worker_wrap.cc): bytes from
// JS buffers, task arguments and return values coming in from JS, and the
// batch of core events (CoreWorker::DrainEvents) going out to JS.
// Thread safety: JS thread only (these functions make and read JS values).
#pragma once

#include <memory>
#include <string>
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

// Drained core events as the JS array ts/runtime/native.ts reads (NativeEvent):
// kObjectReady as just its id (a Buffer), every other event as an object
// with its type in `t`.
Napi::Array EventsToJs(Napi::Env env, std::vector<Event>& events);

}  // namespace rayts::bindings
