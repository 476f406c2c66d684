// PacketSocket: one AF_PACKET socket bound to one interface, with a classic BPF filter,
// driven by uv_poll on the env's loop. Receives in batches with recvmmsg() into one buffer
// that JavaScript owns; sends batches with sendmmsg(). Policy lives in TypeScript
// (src/io/afpacket.ts): this class only moves frames and counts.
#pragma once

#include <linux/if_packet.h>
#include <napi.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace ndp {

class PacketSocket : public Napi::ObjectWrap<PacketSocket> {
 public:
  static Napi::Function Init(Napi::Env env);

  /**
   * new PacketSocket({ ifindex, filter, rxBuffer, lengths, slots, slotSize, mtu,
   *                    rcvbuf, qdiscBypass, ignoreOutgoing, maxBatchesPerWake, rxRing })
   * Opens socket(AF_PACKET, SOCK_RAW, 0), attaches the filter, then binds (ETH_P_ALL).
   * rxRing: receive through a TPACKET_V2 ring of about `rcvbuf` bytes mapped into this process
   * (the kernel writes each frame straight into it: no skb clone, no socket queue, no recvmmsg);
   * frames are copied from the ring into the JS slots exactly as recvmmsg would have put them.
   * Ring frames hold `mtu` bytes of payload plus Ethernet and two VLAN tags (0: 1500).
   * rxBuffer and lengths stay JS-owned: before every batch the socket checks that they are still
   * attached (JS may transfer them) and stops with callback(-EFAULT) instead of writing.
   */
  explicit PacketSocket(const Napi::CallbackInfo& info);
  ~PacketSocket() override;

 private:
  // JS methods.
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Membership(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnCleanup(void* arg);

  void Drain();
  /** Ring receive: copy up to slots_ ready frames into the JS slots; returns how many. */
  uint32_t FillFromRing();
  /** Hand `n` filled slots to JS; false when the callback threw or closed the socket. */
  bool Deliver(Napi::Env env, uint32_t n);
  /** Set up the TPACKET_V2 RX ring on fd (before bind), frames sized for `mtu`; failure: -1. */
  int SetupRing(int fd, uint32_t bytes, uint32_t mtu);
  /** True while the JS receive buffers are still where (and as large as) they were at open. */
  bool RxStillAttached(Napi::Env env);
  /** Stop polling and hand -err to the callback once. */
  void ReportError(Napi::Env env, int err);
  /** Fix up message i after recvmmsg: VLAN re-insertion, truncation; returns captured length. */
  uint32_t Finish(unsigned i);
  void ReadKernelStats();
  /** Close socket and poll handle. `from_js` false when called by the env cleanup hook. */
  void CloseInternal(bool from_js);
  void UnmapRing();
  tpacket2_hdr* RingFrame(uint32_t i) const {
    return reinterpret_cast<tpacket2_hdr*>(ring_ + static_cast<size_t>(i / frames_per_block_) * block_size_ +
                                           static_cast<size_t>(i % frames_per_block_) * frame_size_);
  }
  bool FailIfClosed(Napi::Env env, const char* syscall);

  napi_env env_ = nullptr;
  int fd_ = -1;
  int ifindex_ = 0;
  uv_poll_t* poll_ = nullptr;
  bool closed_ = false;
  bool in_callback_ = false;
  bool pending_unref_ = false;
  bool referenced_ = false;
  bool hook_registered_ = false;

  // Receive side: JS-owned memory, kept alive by the references below and re-checked before
  // every write (RxStillAttached): a transfer or detach moves it out from under us.
  uint8_t* rx_ = nullptr;
  uint32_t* lengths_ = nullptr;
  uint32_t slots_ = 0;
  uint32_t slot_size_ = 0;
  uint32_t max_batches_per_wake_ = 8;
  Napi::ObjectReference rx_ref_;
  Napi::ObjectReference lengths_ref_;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  std::vector<mmsghdr> rmsgs_;
  std::vector<iovec> riov_;
  std::vector<uint8_t> cmsg_;
  size_t cmsg_space_ = 0;

  // TPACKET_V2 RX ring (when ring_ != nullptr): frame i lives in block i / frames_per_block_
  // at offset (i % frames_per_block_) * frame_size_ (frames never straddle blocks).
  uint8_t* ring_ = nullptr;
  size_t ring_len_ = 0;
  uint32_t block_size_ = 0;
  uint32_t frames_per_block_ = 0;
  uint32_t frame_size_ = 0;
  uint32_t frame_nr_ = 0;
  uint32_t ring_head_ = 0;

  // Send side: scratch arrays grown to the largest batch seen.
  std::vector<mmsghdr> smsgs_;
  std::vector<iovec> siov_;

  // Counters (uint64; JS reads them as doubles, exact up to 2^53).
  uint64_t received_ = 0;
  uint64_t batches_ = 0;
  uint64_t wakeups_ = 0;
  uint64_t truncated_ = 0;
  uint64_t vlan_reinserted_ = 0;
  uint64_t recv_errors_ = 0;
  uint64_t sent_ = 0;
  uint64_t send_errors_ = 0;
  uint64_t send_calls_ = 0;
  uint64_t kernel_packets_ = 0;
  uint64_t kernel_drops_ = 0;
  uint64_t polls_empty_ = 0;
  int last_recv_errno_ = 0;
  int last_send_errno_ = 0;
};

}  // namespace ndp
