#include "netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "errors.h"

namespace ndp {

namespace {

constexpr uint32_t kMaxSlots = 1024;
constexpr uint32_t kMinSlotSize = 256;
constexpr uint32_t kMaxSlotSize = 1u << 20;
constexpr uint32_t kMaxRequest = 1u << 16;

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
    std::string m = std::string("options.") + key + " must be an integer in " + std::to_string(min) + ".." +
                    std::to_string(max);
    CodedError(env, "ERR_OUT_OF_RANGE", m.c_str(), false).ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

// The bytes of a TypedArray of type `want`, or nullptr after throwing.
uint8_t* TypedBytes(Napi::Env env, Napi::Value v, napi_typedarray_type want, size_t* length, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
    CodedError(env, "ERR_INVALID_ARG_TYPE", (std::string(what) + " has the wrong type").c_str(), true)
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  *length = ta.ElementLength();
  uint8_t* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
  if (base == nullptr && ta.ByteLength() != 0) {
    CodedError(env, "ERR_INVALID_ARG_VALUE", (std::string(what) + " is detached").c_str(), false)
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  return base + ta.ByteOffset();
}

void FreePoll(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

}  // namespace

Napi::Function NetlinkSocket::Init(Napi::Env env) {
  return DefineClass(env, "NetlinkSocket",
                     {
                         InstanceMethod<&NetlinkSocket::Start>("start"),
                         InstanceMethod<&NetlinkSocket::Send>("send"),
                         InstanceMethod<&NetlinkSocket::Stats>("stats"),
                         InstanceMethod<&NetlinkSocket::Close>("close"),
                         InstanceAccessor<&NetlinkSocket::GetFd>("fd"),
                         InstanceAccessor<&NetlinkSocket::GetPortId>("portId"),
                     });
}

NetlinkSocket::NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  closed_ = true;  // until fully open
  if (info.Length() < 1 || !info[0].IsObject()) {
    CodedError(env, "ERR_INVALID_ARG_TYPE", "options must be an object", true).ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t groups, slots, slot_size, rcvbuf, batches;
  if (!GetU32(o, "groups", 0, UINT32_MAX, &groups) || !GetU32(o, "slots", 1, kMaxSlots, &slots) ||
      !GetU32(o, "slotSize", kMinSlotSize, kMaxSlotSize, &slot_size) ||
      !GetU32(o, "rcvbuf", 0, INT32_MAX, &rcvbuf) || !GetU32(o, "maxBatchesPerWake", 1, 1024, &batches)) {
    return;
  }
  size_t rx_len = 0, lengths_len = 0;
  uint8_t* rx = TypedBytes(env, o.Get("rxBuffer"), napi_uint8_array, &rx_len, "options.rxBuffer");
  if (rx == nullptr) return;
  uint8_t* lengths = TypedBytes(env, o.Get("lengths"), napi_uint32_array, &lengths_len, "options.lengths");
  if (lengths == nullptr) return;
  if (rx_len < static_cast<size_t>(slots) * slot_size || lengths_len < slots) {
    CodedError(env, "ERR_INVALID_ARG_VALUE", "rxBuffer or lengths too small for slots x slotSize", false)
        .ThrowAsJavaScriptException();
    return;
  }

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    SystemError(env, errno, "socket").ThrowAsJavaScriptException();
    return;
  }
  auto fail = [&](const char* syscall) {
    int err = errno;
    ::close(fd);
    SystemError(env, err, syscall).ThrowAsJavaScriptException();
  };
  // A big receive buffer makes lost notifications (ENOBUFS) rare; they are still reported.
  if (rcvbuf > 0) {
    int v = static_cast<int>(rcvbuf);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0 &&
        (errno != EPERM || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) < 0)) {
      fail("setsockopt");
      return;
    }
  }
  sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;  // nl_pid 0: the kernel assigns a unique port id
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) { fail("bind"); return; }
  socklen_t sl = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl) < 0) { fail("getsockname"); return; }

  fd_ = fd;
  port_id_ = sa.nl_pid;
  closed_ = false;
  rx_ = rx;
  lengths_ = reinterpret_cast<uint32_t*>(lengths);
  slots_ = slots;
  slot_size_ = slot_size;
  max_batches_per_wake_ = batches;
  rx_ref_ = Napi::Persistent(o.Get("rxBuffer").As<Napi::Object>());
  lengths_ref_ = Napi::Persistent(o.Get("lengths").As<Napi::Object>());
  rmsgs_.resize(slots);
  riov_.resize(slots);
  for (uint32_t i = 0; i < slots; ++i) {
    riov_[i].iov_base = rx_ + static_cast<size_t>(i) * slot_size_;
    riov_[i].iov_len = slot_size_;
    memset(&rmsgs_[i], 0, sizeof(mmsghdr));
    rmsgs_[i].msg_hdr.msg_iov = &riov_[i];
    rmsgs_[i].msg_hdr.msg_iovlen = 1;
  }
  if (napi_add_env_cleanup_hook(env, &NetlinkSocket::OnCleanup, this) == napi_ok) hook_registered_ = true;
}

NetlinkSocket::~NetlinkSocket() {
  if (hook_registered_) {
    napi_remove_env_cleanup_hook(env_, &NetlinkSocket::OnCleanup, this);
    hook_registered_ = false;
  }
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void NetlinkSocket::OnCleanup(void* arg) {
  NetlinkSocket* self = static_cast<NetlinkSocket*>(arg);
  self->hook_registered_ = false;  // Node removes a hook as it runs it
  self->CloseInternal(false);
}

Napi::Value NetlinkSocket::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value NetlinkSocket::GetPortId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), port_id_);
}

// start(callback): callback(count, errno, stopped) once per batch of `count` datagrams in the
// slots (lengths[i] is the datagram's real length: more than slotSize means it was cut), and
// callback(0, errno, false) for a receive error after which the socket keeps working (ENOBUFS:
// the kernel dropped messages), callback(0, errno, true) once if polling itself fails.
Napi::Value NetlinkSocket::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) return Throw(SystemError(env, EBADF, "uv_poll_start"));
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
  r = uv_poll_start(handle, UV_READABLE, &NetlinkSocket::OnPoll);
  if (r < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle), FreePoll);
    return Throw(SystemError(env, -r, "uv_poll_start"));
  }
  poll_ = handle;
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "ndp:NetlinkSocket");
  Ref();  // while polling, the JS object must outlive its last JS reference
  referenced_ = true;
  return env.Undefined();
}

bool NetlinkSocket::Deliver(Napi::Env env, uint32_t n, int err, bool stopped) {
  if (n > 0) {
    received_ += n;
    batches_++;
  }
  in_callback_ = true;
  callback_.MakeCallback(Value(),
                         {Napi::Number::New(env, n), Napi::Number::New(env, err), Napi::Boolean::New(env, stopped)},
                         *async_context_);
  in_callback_ = false;
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
    return false;
  }
  return !closed_;
}

void NetlinkSocket::OnPoll(uv_poll_t* handle, int status, int events) {
  NetlinkSocket* self = static_cast<NetlinkSocket*>(handle->data);
  if (self == nullptr || self->closed_) return;
  int soerr = 0;
  socklen_t soerr_len = sizeof soerr;
  if (status == UV_EBADF && self->fd_ >= 0 &&
      getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) == 0 && soerr != 0 &&
      uv_poll_start(handle, UV_READABLE, &NetlinkSocket::OnPoll) == 0) {
    // libuv reports EPOLLERR as UV_EBADF and stops the handle. For a netlink socket EPOLLERR
    // means a pending socket error, ENOBUFS when the kernel dropped messages for us: take it
    // (SO_ERROR clears it), report it, poll again and read what is queued.
    self->recv_errors_++;
    self->last_recv_errno_ = soerr;
    if (soerr == ENOBUFS) self->overruns_++;
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    if (self->Deliver(env, 0, soerr, false)) self->Drain();
  } else if (status < 0) {
    self->last_recv_errno_ = -status;
    self->recv_errors_++;
    uv_poll_stop(handle);
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    self->Deliver(env, 0, -status, true);
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

void NetlinkSocket::Drain() {
  wakeups_++;
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  for (uint32_t b = 0; b < max_batches_per_wake_ && !closed_; ++b) {
    for (uint32_t i = 0; i < slots_; ++i) {
      rmsgs_[i].msg_hdr.msg_flags = 0;
      rmsgs_[i].msg_len = 0;
    }
    // Netlink honours MSG_TRUNC: msg_len is the datagram's real length even when it was cut.
    int r = recvmmsg(fd_, rmsgs_.data(), slots_, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      recv_errors_++;
      last_recv_errno_ = err;
      if (err == ENOBUFS) overruns_++;
      // The error is consumed by this call; the socket keeps receiving what comes next.
      if (!Deliver(env, 0, err, false)) break;
      continue;
    }
    uint32_t n = static_cast<uint32_t>(r);
    if (n == 0) break;
    for (uint32_t i = 0; i < n; ++i) {
      lengths_[i] = rmsgs_[i].msg_len;
      if (rmsgs_[i].msg_len > slot_size_ || (rmsgs_[i].msg_hdr.msg_flags & MSG_TRUNC)) truncated_++;
    }
    if (!Deliver(env, n, 0, false)) break;
  }
}

// send(bytes: Uint8Array): bytes accepted by the kernel (one datagram to port 0, the kernel).
Napi::Value NetlinkSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) return Throw(SystemError(env, EBADF, "sendto"));
  size_t len = 0;
  uint8_t* buf = info.Length() > 0 ? TypedBytes(env, info[0], napi_uint8_array, &len, "bytes") : nullptr;
  if (buf == nullptr) {
    if (!env.IsExceptionPending()) return Throw(CodedError(env, "ERR_INVALID_ARG_TYPE", "bytes must be a Uint8Array", true));
    return Napi::Value();
  }
  if (len < 16 || len > kMaxRequest) {
    return Throw(CodedError(env, "ERR_OUT_OF_RANGE", "a netlink request is 16..65536 bytes", false));
  }
  sockaddr_nl to;
  memset(&to, 0, sizeof to);
  to.nl_family = AF_NETLINK;
  ssize_t r;
  do {
    r = sendto(fd_, buf, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to), sizeof to);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    send_errors_++;
    last_send_errno_ = errno;
    return Throw(SystemError(env, errno, "sendto"));
  }
  sent_++;
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Value NetlinkSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto put = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  put("received", received_);
  put("batches", batches_);
  put("wakeups", wakeups_);
  put("truncated", truncated_);
  put("overruns", overruns_);
  put("recvErrors", recv_errors_);
  put("sent", sent_);
  put("sendErrors", send_errors_);
  o.Set("lastRecvErrno", Napi::Number::New(env, last_recv_errno_));
  o.Set("lastSendErrno", Napi::Number::New(env, last_send_errno_));
  return o;
}

void NetlinkSocket::CloseInternal(bool from_js) {
  if (closed_) return;
  closed_ = true;
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);  // stops the watcher now
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!from_js) return;  // env teardown: references are released by the env itself
  if (hook_registered_) {
    napi_remove_env_cleanup_hook(env_, &NetlinkSocket::OnCleanup, this);
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

Napi::Value NetlinkSocket::Close(const Napi::CallbackInfo& info) {
  CloseInternal(true);
  return info.Env().Undefined();
}

}  // namespace ndp
