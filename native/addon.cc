// ndp_native: entry point. Exports the PacketSocket class, ifNameToIndex(), interfaceInfo(),
// restrictCapabilities(), setScheduler()/getScheduler() and the PACKET_MR_* constants. Everything else (policy, argument checks, error wording) is in
// src/io/afpacket.ts.
#include <errno.h>
#include <linux/if_packet.h>
#include <napi.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "capabilities.h"
#include "errors.h"
#include "netlink.h"
#include "packet-socket.h"

namespace {

// ifNameToIndex(name): the interface index in the calling thread's network namespace.
// Throws a system error (code ENODEV) when there is no such interface.
// The interface-name argument of IfNameToIndex and InterfaceInfo: a string that can name an
// interface. Throws (and returns false) otherwise: a type error, or ENODEV for `syscall`.
bool ReadIfName(const Napi::CallbackInfo& info, const char* syscall, std::string* name) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ndp::CodedError(env, "ERR_INVALID_ARG_TYPE", "name must be a string", true).ThrowAsJavaScriptException();
    return false;
  }
  *name = info[0].As<Napi::String>().Utf8Value();
  if (name->empty() || name->size() >= IF_NAMESIZE) {
    ndp::SystemError(env, ENODEV, syscall).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ReadIfName(info, "if_nametoindex", &name)) return Napi::Value();
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) {
    ndp::SystemError(env, errno != 0 ? errno : ENODEV, "if_nametoindex").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return Napi::Number::New(env, idx);
}

// interfaceInfo(name): { ifindex, mac: Uint8Array(6), flags, mtu } by ioctl, in the calling
// thread's network namespace (unlike /sys, which shows the namespace it was mounted in: a process
// that entered a namespace with setns/nsenter still sees the old one there).
Napi::Value InterfaceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!ReadIfName(info, "ioctl", &name)) return Napi::Value();
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ndp::SystemError(env, errno, "socket").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  struct ifreq ifr;
  auto ask = [&](unsigned long req) {
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name.c_str(), name.size());
    return ioctl(fd, req, &ifr);
  };
  Napi::Object o = Napi::Object::New(env);
  if (ask(SIOCGIFINDEX) < 0) {
    int err = errno;
    close(fd);
    ndp::SystemError(env, err == ENODEV || err == ENXIO ? ENODEV : err, "ioctl").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  o.Set("ifindex", Napi::Number::New(env, ifr.ifr_ifindex));
  if (ask(SIOCGIFHWADDR) == 0) {
    Napi::Uint8Array mac = Napi::Uint8Array::New(env, 6);
    memcpy(mac.Data(), ifr.ifr_hwaddr.sa_data, 6);
    o.Set("mac", mac);
    o.Set("hwtype", Napi::Number::New(env, ifr.ifr_hwaddr.sa_family));
  }
  if (ask(SIOCGIFFLAGS) == 0) o.Set("flags", Napi::Number::New(env, static_cast<unsigned short>(ifr.ifr_flags)));
  if (ask(SIOCGIFMTU) == 0) o.Set("mtu", Napi::Number::New(env, ifr.ifr_mtu));
  close(fd);
  return o;
}

// setScheduler(policy, priority, resetOnFork): sched_setscheduler() for the calling thread only
// (pid 0 names the thread on Linux), so Node's helper threads keep theirs. With resetOnFork,
// threads and processes it creates later start at SCHED_OTHER. Throws a system error.
Napi::Value SetScheduler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBoolean()) {
    ndp::CodedError(env, "ERR_INVALID_ARG_TYPE", "setScheduler(policy, priority, resetOnFork)", true)
        .ThrowAsJavaScriptException();
    return Napi::Value();
  }
  int policy = info[0].As<Napi::Number>().Int32Value();
  if (info[2].As<Napi::Boolean>().Value()) policy |= SCHED_RESET_ON_FORK;
  sched_param sp;
  memset(&sp, 0, sizeof sp);
  sp.sched_priority = info[1].As<Napi::Number>().Int32Value();
  if (sched_setscheduler(0, policy, &sp) < 0) {
    ndp::SystemError(env, errno, "sched_setscheduler").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return env.Undefined();
}

// getScheduler(): { policy, priority } of the calling thread (policy without SCHED_RESET_ON_FORK).
Napi::Value GetScheduler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int policy = sched_getscheduler(0);
  sched_param sp;
  memset(&sp, 0, sizeof sp);
  if (policy < 0 || sched_getparam(0, &sp) < 0) {
    ndp::SystemError(env, errno, "sched_getscheduler").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("policy", Napi::Number::New(env, policy & ~SCHED_RESET_ON_FORK));
  o.Set("priority", Napi::Number::New(env, sp.sched_priority));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("interfaceInfo", Napi::Function::New<InterfaceInfo>(env, "interfaceInfo"));
  exports.Set("PacketSocket", ndp::PacketSocket::Init(env));
  exports.Set("NetlinkSocket", ndp::NetlinkSocket::Init(env));
  exports.Set("ifNameToIndex", Napi::Function::New<IfNameToIndex>(env, "ifNameToIndex"));
  exports.Set("PACKET_MR_MULTICAST", Napi::Number::New(env, PACKET_MR_MULTICAST));
  exports.Set("PACKET_MR_PROMISC", Napi::Number::New(env, PACKET_MR_PROMISC));
  exports.Set("PACKET_MR_ALLMULTI", Napi::Number::New(env, PACKET_MR_ALLMULTI));
  exports.Set("setScheduler", Napi::Function::New<SetScheduler>(env, "setScheduler"));
  exports.Set("getScheduler", Napi::Function::New<GetScheduler>(env, "getScheduler"));
  exports.Set("SCHED_OTHER", Napi::Number::New(env, SCHED_OTHER));
  exports.Set("SCHED_FIFO", Napi::Number::New(env, SCHED_FIFO));
  ndp::InitCapabilities(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ndp_native, Init)
