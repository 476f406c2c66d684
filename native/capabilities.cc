// restrictCapabilities(keep: bigint): keep only the capabilities in `keep` (bit n = capability
// n) on EVERY thread of the process, and set no_new_privs.
//
// Capabilities, ambient capabilities, the bounding set and no_new_privs are per thread in Linux:
// capset() and prctl() change only the calling thread, and a Node process runs a dozen threads
// (libuv pool, V8 platform workers). Each other thread is asked, by a real-time signal whose
// handler makes the same calls (what libcap's psx does), after checking in /proc that the thread
// does not block that signal. Which capabilities to keep is decided in TypeScript
// (src/io/capabilities.ts); this file only applies a mask.
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <napi.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "capabilities.h"
#include "errors.h"

namespace ndp {

namespace {

// One drop, the same on every thread. Static: a signal that arrives late (after the wait below
// gave up) still finds valid data and applies the same drop.
struct Job {
  __user_cap_header_struct hdr;
  __user_cap_data_struct data[2];
  uint64_t keep;
  int last_cap;
  bool bounding;  // PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set
};
Job g_job;
std::atomic<int> g_answered{0};
std::atomic<int> g_failed{0};
int g_signal = 0;

// Async-signal-safe: raw syscalls only. Returns 0 or a positive errno.
int Apply(const Job& j) {
  if (j.bounding) {
    for (int c = 0; c <= j.last_cap && c < 64; ++c) {
      if ((j.keep >> c) & 1) continue;
      if (syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) return errno;
    }
  }
  if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return errno;
  __user_cap_header_struct hdr = j.hdr;  // capset may write the header back
  if (syscall(SYS_capset, &hdr, j.data) < 0) return errno;
  if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return errno;
  return 0;
}

void Handler(int) {
  int saved = errno;
  if (Apply(g_job) != 0) g_failed.fetch_add(1);
  g_answered.fetch_add(1);
  errno = saved;
}

// The thread's blocked-signal mask from /proc/self/task/TID/status (SigBlk), or ~0 if unreadable.
uint64_t BlockedSignals(long tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
  FILE* f = fopen(path, "re");
  if (f == nullptr) return ~0ull;
  char line[256];
  uint64_t mask = ~0ull;
  while (fgets(line, sizeof line, f) != nullptr) {
    if (strncmp(line, "SigBlk:", 7) == 0) {
      mask = strtoull(line + 7, nullptr, 16);
      break;
    }
  }
  fclose(f);
  return mask;
}

int LastCap() {
  FILE* f = fopen("/proc/sys/kernel/cap_last_cap", "re");
  int n = 40;
  if (f != nullptr) {
    if (fscanf(f, "%d", &n) != 1) n = 40;
    fclose(f);
  }
  return n;
}

// A real-time signal nobody handles yet, with our handler installed for good (see Job).
int InstallHandler() {
  if (g_signal != 0) return g_signal;
  for (int s = SIGRTMAX - 1; s > SIGRTMIN + 2; --s) {
    struct sigaction old;
    if (sigaction(s, nullptr, &old) < 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = Handler;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(s, &sa, nullptr) == 0) {
      g_signal = s;
      return s;
    }
  }
  return 0;
}

void SleepMs(long ms) {
  timespec ts{0, ms * 1000000L};
  nanosleep(&ts, nullptr);
}

Napi::Value RestrictCapabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBigInt()) {
    CodedError(env, "ERR_INVALID_ARG_TYPE", "keep must be a bigint", true).ThrowAsJavaScriptException();
    return Napi::Value();
  }
  bool lossless = false;
  uint64_t keep = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) {
    CodedError(env, "ERR_OUT_OF_RANGE", "keep must fit in 64 bits", false).ThrowAsJavaScriptException();
    return Napi::Value();
  }

  // The calling thread first: its own state decides whether the bounding set can shrink.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct cur[2];
  if (syscall(SYS_capget, &hdr, cur) < 0) {
    SystemError(env, errno, "capget").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  Job j;
  memset(&j, 0, sizeof j);
  j.hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  for (int i = 0; i < 2; ++i) {
    uint32_t k = static_cast<uint32_t>(keep >> (32 * i));
    j.data[i].effective = cur[i].permitted & k;
    j.data[i].permitted = cur[i].permitted & k;
    j.data[i].inheritable = 0;
  }
  j.keep = keep;
  j.last_cap = LastCap();
  j.bounding = (cur[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)) != 0;
  g_job = j;
  int err = Apply(g_job);
  if (err != 0) {
    SystemError(env, err, "capset").ThrowAsJavaScriptException();
    return Napi::Value();
  }

  const int answered0 = g_answered.load();
  const int failed0 = g_failed.load();
  int sig = InstallHandler();
  long self = syscall(SYS_gettid);
  pid_t pid = getpid();
  std::set<long> asked;
  std::set<long> skipped;
  int signalled = 0;
  // Rounds: a thread may start another while we work; a new thread inherits its creator's
  // state, so a round that finds no thread left to ask ends it. Bounded: 8 rounds, ~1 s each.
  for (int round = 0; round < 8 && sig != 0; ++round) {
    DIR* d = opendir("/proc/self/task");
    if (d == nullptr) break;
    int before = g_answered.load();
    int sent = 0;
    while (dirent* e = readdir(d)) {
      long tid = strtol(e->d_name, nullptr, 10);
      if (tid <= 0 || tid == self || asked.count(tid) || skipped.count(tid)) continue;
      if ((BlockedSignals(tid) >> (sig - 1)) & 1) {
        skipped.insert(tid);
        continue;
      }
      if (syscall(SYS_tgkill, pid, tid, sig) == 0) {
        asked.insert(tid);
        sent++;
      }
    }
    closedir(d);
    if (sent == 0) break;
    signalled += sent;
    for (int w = 0; w < 1000 && g_answered.load() - before < sent; ++w) SleepMs(1);
  }

  Napi::Object o = Napi::Object::New(env);
  o.Set("signal", Napi::Number::New(env, sig));
  o.Set("signalled", Napi::Number::New(env, signalled));
  o.Set("answered", Napi::Number::New(env, g_answered.load() - answered0));
  o.Set("failed", Napi::Number::New(env, g_failed.load() - failed0));
  Napi::Array sk = Napi::Array::New(env, skipped.size());
  uint32_t i = 0;
  for (long tid : skipped) sk.Set(i++, Napi::Number::New(env, static_cast<double>(tid)));
  o.Set("blocked", sk);
  o.Set("bounding", Napi::Boolean::New(env, j.bounding));
  return o;
}

}  // namespace

void InitCapabilities(Napi::Env env, Napi::Object exports) {
  exports.Set("restrictCapabilities", Napi::Function::New<RestrictCapabilities>(env, "restrictCapabilities"));
}

}  // namespace ndp
