// ndp_native: entry point. Exports the PacketSocket class, ifNameToIndex() and the
// PACKET_MR_* constants. Everything else (policy, argument checks, error wording) is in
// src/io/afpacket.ts.
#include <errno.h>
#include <linux/if_packet.h>
#include <napi.h>
#include <net/if.h>

#include <string>

#include "errors.h"
#include "packet-socket.h"

namespace {

// ifNameToIndex(name): the interface index in the calling thread's network namespace.
// Throws a system error (code ENODEV) when there is no such interface.
Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ndp::CodedError(env, "ERR_INVALID_ARG_TYPE", "name must be a string", true).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IF_NAMESIZE) {
    ndp::SystemError(env, ENODEV, "if_nametoindex").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) {
    ndp::SystemError(env, errno != 0 ? errno : ENODEV, "if_nametoindex").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return Napi::Number::New(env, idx);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("PacketSocket", ndp::PacketSocket::Init(env));
  exports.Set("ifNameToIndex", Napi::Function::New<IfNameToIndex>(env, "ifNameToIndex"));
  exports.Set("PACKET_MR_MULTICAST", Napi::Number::New(env, PACKET_MR_MULTICAST));
  exports.Set("PACKET_MR_PROMISC", Napi::Number::New(env, PACKET_MR_PROMISC));
  exports.Set("PACKET_MR_ALLMULTI", Napi::Number::New(env, PACKET_MR_ALLMULTI));
  return exports;
}

}  // namespace

NODE_API_MODULE(ndp_native, Init)
