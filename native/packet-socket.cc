#include "packet-socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"

namespace ndp {

namespace {

constexpr uint32_t kVlanHlen = 4;
constexpr uint32_t kMaxSlots = 1024;
constexpr uint32_t kMinSlotSize = 64;
constexpr uint32_t kMaxSlotSize = 65536 + kVlanHlen;
constexpr uint32_t kMaxFilterInsns = 4096;  // BPF_MAXINSNS
constexpr uint32_t kMaxSendBatch = 1024;    // UIO_MAXIOV, the sendmmsg() vlen limit
constexpr uint32_t kDefaultRingBytes = 4u << 20;
constexpr uint32_t kMaxRingBytes = 256u << 20;
constexpr uint32_t kRingBlock = 1u << 16;   // 64 KiB blocks (order-4 pages, vmalloc fallback)
constexpr uint32_t kMinRingFrame = 256;     // the smallest ring frame, whatever the MTU
constexpr uint32_t kMaxMtu = 65535;
constexpr uint32_t kDefaultMtu = 1500;

// Throw `e` and return an empty value (C++ exceptions are off: the error is left pending).
Napi::Value Throw(const Napi::Error& e) {
  e.ThrowAsJavaScriptException();
  return Napi::Value();
}

bool GetU32(Napi::Object o, const char* key, uint32_t min, uint32_t max, uint32_t* out) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) {
    std::string m = std::string("options.") + key + " must be a number";
    CodedError(env, "ERR_INVALID_ARG_TYPE", m.c_str(), true).ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    std::string m = std::string("options.") + key + " must be an integer in " + std::to_string(min) +
                    ".." + std::to_string(max);
    CodedError(env, "ERR_OUT_OF_RANGE", m.c_str(), false).ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

bool GetBool(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

// The bytes of a TypedArray (any element type), or nullptr after throwing.
uint8_t* TypedBytes(Napi::Env env, Napi::Value v, napi_typedarray_type want, size_t* length,
                    const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
    std::string m = std::string(what) + " has the wrong type";
    CodedError(env, "ERR_INVALID_ARG_TYPE", m.c_str(), true).ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  *length = ta.ElementLength();
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  bool detached = false;
  napi_is_detached_arraybuffer(env, ab, &detached);
  if (detached) {
    CodedError(env, "ERR_INVALID_ARG_VALUE", (std::string(what) + " is detached").c_str(), false)
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  // An empty buffer may have no memory at all: a non-null pointer that is never read.
  static uint8_t empty;
  uint8_t* base = static_cast<uint8_t*>(ab.Data());
  if (base == nullptr) return &empty;
  return base + ta.ByteOffset();
}

// The bytes behind a TypedArray as they are now; nullptr when its buffer is detached.
uint8_t* CurrentBytes(Napi::Env env, Napi::Value v, size_t* byte_length) {
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  bool detached = true;
  if (napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached) return nullptr;
  uint8_t* base = static_cast<uint8_t*>(ab.Data());
  if (base == nullptr) return nullptr;
  *byte_length = ta.ByteLength();
  return base + ta.ByteOffset();
}

int SetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

}  // namespace

Napi::Function PacketSocket::Init(Napi::Env env) {
  return DefineClass(env, "PacketSocket",
                     {
                         InstanceMethod<&PacketSocket::Start>("start"),
                         InstanceMethod<&PacketSocket::Send>("send"),
                         InstanceMethod<&PacketSocket::Membership>("membership"),
                         InstanceMethod<&PacketSocket::Stats>("stats"),
                         InstanceMethod<&PacketSocket::Close>("close"),
                         InstanceAccessor<&PacketSocket::GetFd>("fd"),
                     });
}

PacketSocket::PacketSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketSocket>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  closed_ = true;  // until fully open
  if (info.Length() < 1 || !info[0].IsObject()) {
    CodedError(env, "ERR_INVALID_ARG_TYPE", "options must be an object", true).ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t ifindex, slots, slot_size, rcvbuf, batches, mtu;
  if (!GetU32(o, "ifindex", 1, INT32_MAX, &ifindex) || !GetU32(o, "slots", 1, kMaxSlots, &slots) ||
      !GetU32(o, "mtu", 0, kMaxMtu, &mtu) ||
      !GetU32(o, "slotSize", kMinSlotSize, kMaxSlotSize, &slot_size) ||
      !GetU32(o, "rcvbuf", 0, INT32_MAX, &rcvbuf) ||
      !GetU32(o, "maxBatchesPerWake", 1, 1024, &batches)) {
    return;
  }
  size_t filter_len = 0, rx_len = 0, lengths_len = 0;
  uint8_t* filter = TypedBytes(env, o.Get("filter"), napi_uint8_array, &filter_len, "options.filter");
  if (filter == nullptr) return;
  if (filter_len == 0 || filter_len % sizeof(sock_filter) != 0 ||
      filter_len / sizeof(sock_filter) > kMaxFilterInsns) {
    CodedError(env, "ERR_INVALID_ARG_VALUE", "options.filter must hold 1..4096 BPF instructions of 8 bytes", false)
        .ThrowAsJavaScriptException();
    return;
  }
  uint8_t* rx = TypedBytes(env, o.Get("rxBuffer"), napi_uint8_array, &rx_len, "options.rxBuffer");
  if (rx == nullptr) return;
  uint8_t* lengths = TypedBytes(env, o.Get("lengths"), napi_uint32_array, &lengths_len, "options.lengths");
  if (lengths == nullptr) return;
  if (rx_len < static_cast<size_t>(slots) * slot_size || lengths_len < slots) {
    CodedError(env, "ERR_INVALID_ARG_VALUE", "rxBuffer or lengths too small for slots x slotSize", false)
        .ThrowAsJavaScriptException();
    return;
  }

  // 1. Protocol 0: the socket receives nothing until bind() names a protocol.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    SystemError(env, errno, "socket").ThrowAsJavaScriptException();
    return;
  }
  auto fail = [&](const char* syscall) {
    int err = errno;
    UnmapRing();
    ::close(fd);
    SystemError(env, err, syscall).ThrowAsJavaScriptException();
  };

  // 2. The filter, before any frame can be queued.
  sock_fprog prog;
  prog.len = static_cast<unsigned short>(filter_len / sizeof(sock_filter));
  std::vector<sock_filter> insns(prog.len);
  memcpy(insns.data(), filter, filter_len);
  prog.filter = insns.data();
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) { fail("setsockopt"); return; }

  // 3. Options. A big receive buffer absorbs bursts between two wake-ups.
  if (rcvbuf > 0) {
    if (SetInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, static_cast<int>(rcvbuf)) < 0) {
      if (errno != EPERM || SetInt(fd, SOL_SOCKET, SO_RCVBUF, static_cast<int>(rcvbuf)) < 0) {
        { fail("setsockopt"); return; }
      }
    }
  }
  // The kernel strips 802.1Q tags on receive; auxdata gives them back (see Finish()). A ring
  // carries the same facts in each frame's header.
  if (SetInt(fd, SOL_PACKET, PACKET_AUXDATA, 1) < 0) { fail("setsockopt"); return; }
  slot_size_ = slot_size;
  if (GetBool(o, "rxRing") && SetupRing(fd, rcvbuf, mtu) < 0) {
    // No ring (ENOMEM, or a kernel without TPACKET_V2): recvmmsg works on any socket.
    ring_ = nullptr;
  }
  if (GetBool(o, "ignoreOutgoing") && SetInt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1) < 0) {
    { fail("setsockopt"); return; }
  }
  if (GetBool(o, "qdiscBypass") && SetInt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, 1) < 0) {
    { fail("setsockopt"); return; }
  }

  // 4. Bind: from here on, frames that pass the filter are queued.
  sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) { fail("bind"); return; }

  fd_ = fd;
  ifindex_ = static_cast<int>(ifindex);
  closed_ = false;
  rx_ = rx;
  lengths_ = reinterpret_cast<uint32_t*>(lengths);
  slots_ = slots;
  slot_size_ = slot_size;
  max_batches_per_wake_ = batches;
  rx_ref_ = Napi::Persistent(o.Get("rxBuffer").As<Napi::Object>());
  lengths_ref_ = Napi::Persistent(o.Get("lengths").As<Napi::Object>());

  // Receive descriptors: slot i receives at rx + i*slotSize, leaving kVlanHlen bytes spare at
  // the end so a stripped tag can be put back in place.
  cmsg_space_ = CMSG_SPACE(sizeof(tpacket_auxdata));
  rmsgs_.resize(slots);
  riov_.resize(slots);
  cmsg_.assign(static_cast<size_t>(slots) * cmsg_space_, 0);
  for (uint32_t i = 0; i < slots; ++i) {
    riov_[i].iov_base = rx_ + static_cast<size_t>(i) * slot_size_;
    riov_[i].iov_len = slot_size_ - kVlanHlen;
    memset(&rmsgs_[i], 0, sizeof(mmsghdr));
    rmsgs_[i].msg_hdr.msg_iov = &riov_[i];
    rmsgs_[i].msg_hdr.msg_iovlen = 1;
    rmsgs_[i].msg_hdr.msg_control = cmsg_.data() + static_cast<size_t>(i) * cmsg_space_;
    rmsgs_[i].msg_hdr.msg_controllen = cmsg_space_;
  }

  if (napi_add_env_cleanup_hook(env, &PacketSocket::OnCleanup, this) == napi_ok) hook_registered_ = true;
}

PacketSocket::~PacketSocket() {
  if (hook_registered_) {
    napi_remove_env_cleanup_hook(env_, &PacketSocket::OnCleanup, this);
    hook_registered_ = false;
  }
  if (poll_ != nullptr) {
    // Only reachable at env teardown: stop polling and let the loop free the handle.
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  UnmapRing();
}

void PacketSocket::UnmapRing() {
  if (ring_ != nullptr) {
    munmap(ring_, ring_len_);
    ring_ = nullptr;
    ring_len_ = 0;
  }
}

int PacketSocket::SetupRing(int fd, uint32_t bytes, uint32_t mtu) {
  if (SetInt(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2) < 0) return -1;
  // A frame slot holds tpacket2_hdr + sockaddr_ll, then the frame at tp_mac: the kernel puts
  // the network header at TPACKET_ALIGN(TPACKET2_HDRLEN + max(mac header, 16)), 80 bytes in
  // for a MAC header of up to 28 bytes (Ethernet and two 802.1Q tags left in the frame), so
  // 80 + MTU bytes hold any frame the interface can receive whole. A longer one (GRO, an MTU
  // raised after open) is also queued whole on the socket (PACKET_COPY_THRESH) and marked
  // TP_STATUS_COPY in the ring: FillFromRing() reads it from there.
  if (mtu == 0) mtu = kDefaultMtu;
  const uint32_t l2 = TPACKET_ALIGN(TPACKET2_HDRLEN + ETH_HLEN + 2 * kVlanHlen);
  uint32_t frame = TPACKET_ALIGN(l2 + mtu);
  if (frame < kMinRingFrame) frame = kMinRingFrame;
  if (SetInt(fd, SOL_PACKET, PACKET_COPY_THRESH, 1) < 0) return -1;
  long page = sysconf(_SC_PAGESIZE);
  uint32_t pg = page > 0 ? static_cast<uint32_t>(page) : 4096;
  uint32_t block = kRingBlock;
  if (frame > block) block = (frame + pg - 1) / pg * pg;
  if (bytes == 0) bytes = kDefaultRingBytes;
  if (bytes > kMaxRingBytes) bytes = kMaxRingBytes;
  uint32_t blocks = bytes / block;
  if (blocks < 2) blocks = 2;
  tpacket_req req;
  req.tp_block_size = block;
  req.tp_block_nr = blocks;
  req.tp_frame_size = frame;
  req.tp_frame_nr = (block / frame) * blocks;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) {
    int err = errno;
    SetInt(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V1);
    errno = err;
    return -1;
  }
  size_t len = static_cast<size_t>(block) * blocks;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd, 0);
  if (m == MAP_FAILED) m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    int err = errno;
    tpacket_req none;
    memset(&none, 0, sizeof none);
    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &none, sizeof none);
    SetInt(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V1);
    errno = err;
    return -1;
  }
  ring_ = static_cast<uint8_t*>(m);
  ring_len_ = len;
  block_size_ = block;
  frames_per_block_ = block / frame;
  frame_size_ = frame;
  frame_nr_ = req.tp_frame_nr;
  ring_head_ = 0;
  return 0;
}

void PacketSocket::OnCleanup(void* arg) {
  PacketSocket* self = static_cast<PacketSocket*>(arg);
  self->hook_registered_ = false;  // Node removes a hook as it runs it
  self->CloseInternal(false);
}

bool PacketSocket::FailIfClosed(Napi::Env env, const char* syscall) {
  if (fd_ >= 0) return false;
  SystemError(env, EBADF, syscall).ThrowAsJavaScriptException();
  return true;
}

Napi::Value PacketSocket::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

// start(callback): callback(count) once per received batch; callback(-errno) once if polling fails.
Napi::Value PacketSocket::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (FailIfClosed(env, "uv_poll_start")) return Napi::Value();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    return Throw(CodedError(env, "ERR_INVALID_ARG_TYPE", "callback must be a function", true));
  }
  if (poll_ != nullptr) return Throw(CodedError(env, "ERR_ALREADY_STARTED", "already started", false));
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    return Throw(CodedError(env, "ERR_NO_EVENT_LOOP", "no uv loop for this env", false));
  }
  uv_poll_t* handle = new uv_poll_t;
  int r = uv_poll_init(loop, handle, fd_);
  if (r < 0) {
    delete handle;
    return Throw(SystemError(env, -r, "uv_poll_init"));
  }
  handle->data = this;
  r = uv_poll_start(handle, UV_READABLE, &PacketSocket::OnPoll);
  if (r < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    return Throw(SystemError(env, -r, "uv_poll_start"));
  }
  poll_ = handle;
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "ndp:PacketSocket");
  // While polling, the JS object must outlive its last JS reference.
  Ref();
  referenced_ = true;
  return env.Undefined();
}

void PacketSocket::OnPoll(uv_poll_t* handle, int status, int events) {
  PacketSocket* self = static_cast<PacketSocket*>(handle->data);
  if (self == nullptr || self->closed_) return;
  if (status < 0) {
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    self->ReportError(env, -status);
  } else {
    self->Drain();
  }
  if (self->pending_unref_) {
    // close() ran inside the callback: drop the JS function and our self-reference last.
    self->pending_unref_ = false;
    self->callback_.Reset();
    self->async_context_.reset();
    if (self->referenced_) {
      self->referenced_ = false;
      self->Unref();  // may allow GC of `self`: nothing after this line
    }
  }
}

bool PacketSocket::RxStillAttached(Napi::Env env) {
  size_t rx_len = 0, lengths_len = 0;
  uint8_t* rx = CurrentBytes(env, rx_ref_.Value(), &rx_len);
  uint8_t* lengths = CurrentBytes(env, lengths_ref_.Value(), &lengths_len);
  return rx == rx_ && rx_len >= static_cast<size_t>(slots_) * slot_size_ &&
         lengths == reinterpret_cast<uint8_t*>(lengths_) && lengths_len >= slots_ * sizeof(uint32_t);
}

void PacketSocket::ReportError(Napi::Env env, int err) {
  // Report once and stop polling; the socket stays open for close() and stats().
  last_recv_errno_ = err;
  recv_errors_++;
  if (poll_ != nullptr) uv_poll_stop(poll_);
  in_callback_ = true;
  callback_.MakeCallback(Value(), {Napi::Number::New(env, -err)}, *async_context_);
  in_callback_ = false;
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

uint32_t PacketSocket::Finish(unsigned i) {
  mmsghdr& m = rmsgs_[i];
  uint8_t* frame = rx_ + static_cast<size_t>(i) * slot_size_;
  uint32_t room = slot_size_ - kVlanHlen;
  // With MSG_TRUNC, msg_len is the frame's real length even when it did not fit.
  uint32_t len = m.msg_len;
  if (len > room) {
    len = room;
    truncated_++;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c != nullptr; c = CMSG_NXTHDR(&m.msg_hdr, c)) {
    if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA ||
        c->cmsg_len < CMSG_LEN(sizeof(tpacket_auxdata))) {
      continue;
    }
    tpacket_auxdata aux;
    memcpy(&aux, CMSG_DATA(c), sizeof aux);
    if ((aux.tp_status & TP_STATUS_VLAN_VALID) && len >= 12) {
      // Put the stripped 802.1Q tag back after the two MAC addresses, so JS sees the frame
      // exactly as it was on the wire. The slot keeps kVlanHlen spare bytes for this.
      uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : ETH_P_8021Q;
      memmove(frame + 12 + kVlanHlen, frame + 12, len - 12);
      frame[12] = static_cast<uint8_t>(tpid >> 8);
      frame[13] = static_cast<uint8_t>(tpid);
      frame[14] = static_cast<uint8_t>(aux.tp_vlan_tci >> 8);
      frame[15] = static_cast<uint8_t>(aux.tp_vlan_tci);
      len += kVlanHlen;
      vlan_reinserted_++;
    }
    break;
  }
  return len;
}

uint32_t PacketSocket::FillFromRing() {
  const uint32_t room = slot_size_ - kVlanHlen;
  uint32_t n = 0;
  while (n < slots_) {
    tpacket2_hdr* h = RingFrame(ring_head_);
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if ((st & TP_STATUS_USER) == 0) break;
    if (st & TP_STATUS_COPY) {
      // Too long for a ring frame: the whole frame waits on the socket queue, in ring order.
      mmsghdr& m = rmsgs_[n];
      m.msg_hdr.msg_controllen = cmsg_space_;
      m.msg_hdr.msg_flags = 0;
      ssize_t r = recvmsg(fd_, &m.msg_hdr, MSG_DONTWAIT | MSG_TRUNC);
      if (r >= 0) {
        m.msg_len = static_cast<unsigned>(r);
        lengths_[n] = Finish(n);
        __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        ring_head_ = ring_head_ + 1 == frame_nr_ ? 0 : ring_head_ + 1;
        n++;
        continue;
      }
      recv_errors_++;  // cannot happen (the copy is queued before the frame is marked): use the cut frame
      last_recv_errno_ = errno;
    }
    const uint8_t* src = reinterpret_cast<const uint8_t*>(h) + h->tp_mac;
    uint8_t* dst = rx_ + static_cast<size_t>(n) * slot_size_;
    // Same result as recvmmsg + Finish(): at most `room` bytes, then the tag put back.
    uint32_t len = h->tp_snaplen < room ? h->tp_snaplen : room;
    if (h->tp_len > len) truncated_++;
    if ((st & TP_STATUS_VLAN_VALID) && len >= 12) {
      uint16_t tpid = (st & TP_STATUS_VLAN_TPID_VALID) ? h->tp_vlan_tpid : ETH_P_8021Q;
      memcpy(dst, src, 12);
      dst[12] = static_cast<uint8_t>(tpid >> 8);
      dst[13] = static_cast<uint8_t>(tpid);
      dst[14] = static_cast<uint8_t>(h->tp_vlan_tci >> 8);
      dst[15] = static_cast<uint8_t>(h->tp_vlan_tci);
      memcpy(dst + 12 + kVlanHlen, src + 12, len - 12);
      len += kVlanHlen;
      vlan_reinserted_++;
    } else {
      memcpy(dst, src, len);
    }
    lengths_[n] = len;
    // Give the frame back to the kernel: the copy above must be complete first.
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    ring_head_ = ring_head_ + 1 == frame_nr_ ? 0 : ring_head_ + 1;
    n++;
  }
  return n;
}

bool PacketSocket::Deliver(Napi::Env env, uint32_t n) {
  received_ += n;
  batches_++;
  in_callback_ = true;
  callback_.MakeCallback(Value(), {Napi::Number::New(env, n)}, *async_context_);
  in_callback_ = false;
  if (env.IsExceptionPending()) {
    // Same as an exception thrown from any Node callback: 'uncaughtException'.
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
    return false;
  }
  return !closed_;
}

void PacketSocket::Drain() {
  wakeups_++;
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  for (uint32_t b = 0; b < max_batches_per_wake_ && !closed_; ++b) {
    // JavaScript runs between two batches (and between two wake-ups): it may have transferred
    // or detached the receive buffer. Never write where it no longer is.
    if (!RxStillAttached(env)) {
      ReportError(env, EFAULT);
      break;
    }
    uint32_t n = 0;
    if (ring_ != nullptr) {
      n = FillFromRing();
    } else {
      for (uint32_t i = 0; i < slots_; ++i) {
        rmsgs_[i].msg_hdr.msg_controllen = cmsg_space_;
        rmsgs_[i].msg_hdr.msg_flags = 0;
        rmsgs_[i].msg_len = 0;
      }
      int r = recvmmsg(fd_, rmsgs_.data(), slots_, MSG_DONTWAIT | MSG_TRUNC, nullptr);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          recv_errors_++;
          last_recv_errno_ = errno;
        }
        break;
      }
      n = static_cast<uint32_t>(r);
      for (uint32_t i = 0; i < n; ++i) lengths_[i] = Finish(i);
    }
    if (n == 0) {
      if (b == 0) polls_empty_++;
      break;
    }
    if (!Deliver(env, n)) break;
    if (n < slots_) break;  // drained; the poll is level-triggered anyway
  }
}

// send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count): frames accepted.
Napi::Value PacketSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (FailIfClosed(env, "sendmmsg")) return Napi::Value();
  if (info.Length() < 4 || !info[3].IsNumber()) {
    return Throw(CodedError(env, "ERR_INVALID_ARG_TYPE", "send(buf, offsets, lengths, count)", true));
  }
  size_t buf_len = 0, off_len = 0, len_len = 0;
  uint8_t* buf = TypedBytes(env, info[0], napi_uint8_array, &buf_len, "buf");
  if (buf == nullptr) return Napi::Value();
  uint32_t* offsets = reinterpret_cast<uint32_t*>(TypedBytes(env, info[1], napi_uint32_array, &off_len, "offsets"));
  if (offsets == nullptr) return Napi::Value();
  uint32_t* lens = reinterpret_cast<uint32_t*>(TypedBytes(env, info[2], napi_uint32_array, &len_len, "lengths"));
  if (lens == nullptr) return Napi::Value();
  double dcount = info[3].As<Napi::Number>().DoubleValue();
  if (!(dcount >= 0 && dcount <= kMaxSendBatch) || dcount != static_cast<double>(static_cast<uint32_t>(dcount)) ||
      dcount > off_len || dcount > len_len) {
    return Throw(CodedError(env, "ERR_OUT_OF_RANGE", "count out of range", false));
  }
  uint32_t count = static_cast<uint32_t>(dcount);
  if (count == 0) return Napi::Number::New(env, 0);
  if (smsgs_.size() < count) {
    smsgs_.resize(count);
    siov_.resize(count);
  }
  for (uint32_t i = 0; i < count; ++i) {
    if (static_cast<uint64_t>(offsets[i]) + lens[i] > buf_len || lens[i] < 14) {
      return Throw(CodedError(env, "ERR_OUT_OF_RANGE", "frame outside buf or shorter than 14 bytes", false));
    }
    siov_[i].iov_base = buf + offsets[i];
    siov_[i].iov_len = lens[i];
    memset(&smsgs_[i], 0, sizeof(mmsghdr));
    smsgs_[i].msg_hdr.msg_iov = &siov_[i];
    smsgs_[i].msg_hdr.msg_iovlen = 1;
  }
  // One syscall per batch; a frame the kernel rejects is counted and skipped. A full queue
  // (EAGAIN, ENOBUFS) ends the batch: the rest are counted as send errors, never thrown.
  uint32_t done = 0, accepted = 0, interrupts = 0;
  while (done < count) {
    send_calls_++;
    int r = sendmmsg(fd_, smsgs_.data() + done, count - done, MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<uint32_t>(r);
      accepted += static_cast<uint32_t>(r);
      continue;
    }
    if (r == 0) break;
    int err = errno;
    if (err == EINTR && ++interrupts < 8) continue;
    last_send_errno_ = err;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR) {
      send_errors_ += count - done;
      break;
    }
    send_errors_++;
    done++;
  }
  sent_ += accepted;
  return Napi::Number::New(env, accepted);
}

// membership(add: boolean, type: number, mac?: Uint8Array(6)).
Napi::Value PacketSocket::Membership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (FailIfClosed(env, "setsockopt")) return Napi::Value();
  if (info.Length() < 2 || !info[0].IsBoolean() || !info[1].IsNumber()) {
    return Throw(CodedError(env, "ERR_INVALID_ARG_TYPE", "membership(add, type, mac?)", true));
  }
  bool add = info[0].As<Napi::Boolean>().Value();
  uint32_t type = info[1].As<Napi::Number>().Uint32Value();
  if (type != PACKET_MR_MULTICAST && type != PACKET_MR_PROMISC && type != PACKET_MR_ALLMULTI) {
    return Throw(CodedError(env, "ERR_OUT_OF_RANGE", "membership type must be PACKET_MR_*", false));
  }
  packet_mreq mreq;
  memset(&mreq, 0, sizeof mreq);
  mreq.mr_ifindex = ifindex_;
  mreq.mr_type = static_cast<unsigned short>(type);
  if (type == PACKET_MR_MULTICAST) {
    size_t n = 0;
    uint8_t* mac = info.Length() > 2 ? TypedBytes(env, info[2], napi_uint8_array, &n, "mac") : nullptr;
    if (mac == nullptr) {
      if (!env.IsExceptionPending()) {
        return Throw(CodedError(env, "ERR_INVALID_ARG_TYPE", "mac must be a Uint8Array", true));
      }
      return Napi::Value();
    }
    if (n != 6) return Throw(CodedError(env, "ERR_INVALID_ARG_VALUE", "mac must be 6 bytes", false));
    mreq.mr_alen = 6;
    memcpy(mreq.mr_address, mac, 6);
  }
  int opt = add ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP;
  if (setsockopt(fd_, SOL_PACKET, opt, &mreq, sizeof mreq) < 0) {
    return Throw(SystemError(env, errno, "setsockopt"));
  }
  return env.Undefined();
}

void PacketSocket::ReadKernelStats() {
  if (fd_ < 0) return;
  tpacket_stats st;
  socklen_t len = sizeof st;
  // Reading resets the kernel's counters: accumulate. tp_packets already includes tp_drops.
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
    kernel_packets_ += st.tp_packets;
    kernel_drops_ += st.tp_drops;
  }
}

Napi::Value PacketSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadKernelStats();
  Napi::Object o = Napi::Object::New(env);
  auto put = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  put("received", received_);
  put("batches", batches_);
  put("wakeups", wakeups_);
  put("truncated", truncated_);
  put("vlanReinserted", vlan_reinserted_);
  put("recvErrors", recv_errors_);
  put("sent", sent_);
  put("sendErrors", send_errors_);
  put("sendCalls", send_calls_);
  put("kernelPackets", kernel_packets_);
  put("kernelDrops", kernel_drops_);
  put("emptyWakeups", polls_empty_);
  put("ringFrames", ring_ != nullptr ? frame_nr_ : 0);
  o.Set("lastRecvErrno", Napi::Number::New(env, last_recv_errno_));
  o.Set("lastSendErrno", Napi::Number::New(env, last_send_errno_));
  return o;
}

void PacketSocket::CloseInternal(bool from_js) {
  if (closed_) return;
  ReadKernelStats();
  closed_ = true;
  if (poll_ != nullptr) {
    // uv_close() stops the watcher now (the fd leaves epoll before we close it below) and
    // frees the heap handle later, in its close callback.
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);  // the kernel drops every membership of this socket here
    fd_ = -1;
  }
  UnmapRing();  // Drain() never touches the ring after a callback that may have closed us
  if (!from_js) return;  // env teardown: references are released by the env itself
  if (hook_registered_) {
    napi_remove_env_cleanup_hook(env_, &PacketSocket::OnCleanup, this);
    hook_registered_ = false;
  }
  if (in_callback_) {
    pending_unref_ = true;  // OnPoll finishes the job once the callback returns
    return;
  }
  callback_.Reset();
  async_context_.reset();
  if (referenced_) {
    referenced_ = false;
    Unref();
  }
}

Napi::Value PacketSocket::Close(const Napi::CallbackInfo& info) {
  CloseInternal(true);
  return info.Env().Undefined();
}

}  // namespace ndp
