// NetlinkSocket: one NETLINK_ROUTE socket bound to the multicast groups JavaScript names, driven
// by uv_poll on the env's loop. Receives datagrams in batches with recvmmsg() into one buffer
// that JavaScript owns (fixed slots); sends requests JavaScript built (e.g. an RTM_GETROUTE
// dump). It does not parse anything: src/io/rtnetlink.ts reads the messages and
// src/io/route-monitor.ts decides what to do with them.
#pragma once

#include <napi.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace ndp {

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Init(Napi::Env env);

  /**
   * new NetlinkSocket({ groups, rxBuffer, lengths, slots, slotSize, rcvbuf, maxBatchesPerWake })
   * Opens socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), sets the receive buffer, binds to the
   * `groups` bitmask (RTMGRP_*). Non-blocking, close-on-exec.
   */
  explicit NetlinkSocket(const Napi::CallbackInfo& info);
  ~NetlinkSocket() override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetPortId(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnCleanup(void* arg);

  void Drain();
  /** Call the JS callback (count, errno, stopped); false when it threw or closed the socket. */
  bool Deliver(Napi::Env env, uint32_t n, int err, bool stopped);
  void CloseInternal(bool from_js);

  napi_env env_ = nullptr;
  int fd_ = -1;
  uint32_t port_id_ = 0;
  uv_poll_t* poll_ = nullptr;
  bool closed_ = false;
  bool in_callback_ = false;
  bool pending_unref_ = false;
  bool referenced_ = false;
  bool hook_registered_ = false;

  uint8_t* rx_ = nullptr;
  uint32_t* lengths_ = nullptr;
  uint32_t slots_ = 0;
  uint32_t slot_size_ = 0;
  uint32_t max_batches_per_wake_ = 16;
  Napi::ObjectReference rx_ref_;
  Napi::ObjectReference lengths_ref_;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  std::vector<mmsghdr> rmsgs_;
  std::vector<iovec> riov_;

  uint64_t received_ = 0;
  uint64_t batches_ = 0;
  uint64_t wakeups_ = 0;
  uint64_t truncated_ = 0;
  uint64_t overruns_ = 0;  // ENOBUFS: the kernel dropped messages for this socket
  uint64_t recv_errors_ = 0;
  uint64_t sent_ = 0;
  uint64_t send_errors_ = 0;
  int last_recv_errno_ = 0;
  int last_send_errno_ = 0;
};

}  // namespace ndp
