/*
 * latency-probe: one NS at a time to random proxied targets; the time from just before the
 * send (CLOCK_REALTIME) to the kernel receive timestamp (SO_TIMESTAMPNS) of the NA whose
 * target matches. N samples (NS actually sent: one the link refuses is counted in "unsent" and
 * replaced), each with its own timeout; prints p50/p90/p99/max and lost.
 *
 * --wait-ready MS: instead, solicit one target (--target ADDR, default the LAST address of
 * --targets) every 50 ms until a matching NA arrives; exit 0 when answered, 1 on timeout.
 *
 * Sampling stops early after --max-seconds (default 30), so a slow responder cannot stall a run.
 *
 * Usage: latency-probe --if IF --targets FILE [--samples N] [--timeout-ms MS] [--gap-us US]
 *                      [--max-seconds S]
 *                      [--src ADDR] [--seed S]
 *        latency-probe --if IF --targets FILE --wait-ready MS [--target ADDR]
 */
#include "ndp-frames.h"

#include <getopt.h>
#include <poll.h>
#include <sys/prctl.h>

static double realtime_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x243F6A8885A308D3ULL;
static uint64_t rng(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

/*
 * Waits until an NA for `target` arrives or `deadline` (monotonic) passes. Returns the receive
 * timestamp (realtime seconds) or -1 on timeout. Other frames are read and ignored.
 */
static double wait_na(int rx, const struct in6_addr *target, double deadline) {
  uint8_t buf[2048];
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) return -1;
    struct pollfd pfd = {.fd = rx, .events = POLLIN};
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    int r = ppoll(&pfd, 1, &ts, NULL);
    if (r < 0 && errno != EINTR) die("ppoll");
    if (r <= 0) continue;
    for (;;) {
      long long rx_ns;
      ssize_t n = recv_frame_ts(rx, buf, sizeof buf, NULL, &rx_ns);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        die("recvmsg");
      }
      if (n < ND_TARGET_OFF + 16 || memcmp(buf + ND_TARGET_OFF, target->s6_addr, 16) != 0) continue;
      if (rx_ns) return (double)(rx_ns / 1000000000LL) + (double)(rx_ns % 1000000000LL) / 1e9;
      return realtime_s(); /* no timestamp: fall back to now */
    }
  }
}

static void drain(int rx) {
  uint8_t buf[2048];
  while (recv(rx, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) {
  if (n == 0) return -1;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

int main(int argc, char **argv) {
  const char *ifname = NULL, *targets = NULL, *src_s = "2003:ab11::1", *target_s = NULL;
  int samples = 1000, timeout_ms = 200, gap_us = 500, wait_ready_ms = 0;
  double max_seconds = 30;
  static struct option opts[] = {
      {"if", required_argument, 0, 'i'},          {"targets", required_argument, 0, 't'},
      {"samples", required_argument, 0, 'n'},     {"timeout-ms", required_argument, 0, 'T'},
      {"gap-us", required_argument, 0, 'g'},      {"src", required_argument, 0, 's'},
      {"seed", required_argument, 0, 'S'},        {"wait-ready", required_argument, 0, 'W'},
      {"target", required_argument, 0, 'a'},      {"max-seconds", required_argument, 0, 'M'},
      {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'i': ifname = optarg; break;
      case 't': targets = optarg; break;
      case 'n': samples = atoi(optarg); break;
      case 'T': timeout_ms = atoi(optarg); break;
      case 'g': gap_us = atoi(optarg); break;
      case 's': src_s = optarg; break;
      case 'S': rng_state = strtoull(optarg, NULL, 0) | 1; break;
      case 'W': wait_ready_ms = atoi(optarg); break;
      case 'a': target_s = optarg; break;
      case 'M': max_seconds = atof(optarg); break;
      default: die_msg("usage: latency-probe --if IF --targets FILE [--samples N] [--timeout-ms MS] ...");
    }
  }
  if (!ifname || (!targets && !target_s)) die_msg("--if and --targets (or --target) are required");
  if (samples < 1 || samples > 1000000) die_msg("--samples must be in [1, 1000000]");
  if (timeout_ms < 1 || timeout_ms > 10000) die_msg("--timeout-ms must be in [1, 10000]");
  if (wait_ready_ms < 0 || wait_ready_ms > 3600000) die_msg("--wait-ready must be in [0, 3600000] ms");
  if (max_seconds <= 0 || max_seconds > 600) die_msg("--max-seconds must be in (0, 600]");
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  struct in6_addr src_ip;
  if (inet_pton(AF_INET6, src_s, &src_ip) != 1) die_msg("bad --src");
  size_t n_addr = 0;
  struct in6_addr *addrs;
  if (target_s) {
    addrs = malloc(sizeof *addrs);
    n_addr = 1;
    if (inet_pton(AF_INET6, target_s, addrs) != 1) die_msg("bad --target");
  } else {
    addrs = read_addrs(targets, &n_addr);
  }
  int ifindex;
  uint8_t mac[6], frame[NS_FRAME_LEN];
  int tx = open_tx_socket(ifname, &ifindex, mac);
  int rx = open_na_socket(ifname, 1 << 20);
  enable_rx_timestamps(rx);

  if (wait_ready_ms > 0) {
    const struct in6_addr *t = &addrs[n_addr - 1];
    build_ns(frame, mac, &src_ip, t);
    double t0 = now_s(), end = t0 + wait_ready_ms / 1000.0;
    int tries = 0;
    while (now_s() < end) {
      if (send(tx, frame, NS_FRAME_LEN, 0) < 0 && errno != ENOBUFS && errno != EAGAIN) die("send");
      tries++;
      double until = now_s() + 0.05;
      if (until > end) until = end;
      if (wait_na(rx, t, until) > 0) {
        printf("{\"ready\":true,\"after_s\":%.3f,\"tries\":%d}\n", now_s() - t0, tries);
        return 0;
      }
    }
    printf("{\"ready\":false,\"after_s\":%.3f,\"tries\":%d}\n", now_s() - t0, tries);
    return 1;
  }

  double *lat = malloc((size_t)samples * sizeof *lat);
  if (!lat) die("malloc");
  size_t got = 0, lost = 0, unsent = 0;
  double t_start = now_s();
  int done = 0; /* NS actually sent: a refused one is retried as a new sample, within max_seconds */
  while (done < samples && now_s() - t_start < max_seconds) {
    done++;
    const struct in6_addr *t = &addrs[rng() % n_addr];
    build_ns(frame, mac, &src_ip, t);
    drain(rx);
    double sent_at = realtime_s();
    // A link saturated by someone else's flood refuses frames for a moment (ENOBUFS): retry for
    // up to 20 ms, then count the NS as unsent (it never left, so it says nothing of the answerer)
    // and try again with a new sample.
    double give_up = now_s() + 0.02;
    int rc;
    while ((rc = (int)send(tx, frame, NS_FRAME_LEN, 0)) < 0 && (errno == ENOBUFS || errno == EAGAIN) && now_s() < give_up) sleep_s(0.0005);
    if (rc < 0) {
      if (errno != ENOBUFS && errno != EAGAIN) die("send");
      unsent++;
      done--;
      continue;
    }
    sent_at = realtime_s();
    double rx_at = wait_na(rx, t, now_s() + timeout_ms / 1000.0);
    if (rx_at < 0) lost++;
    else lat[got++] = (rx_at - sent_at) * 1e6;
    if (gap_us > 0) sleep_s(gap_us / 1e6);
  }
  double took = now_s() - t_start;
  qsort(lat, got, sizeof *lat, cmp_d);
  double sum = 0;
  for (size_t i = 0; i < got; i++) sum += lat[i];
  printf("{\"samples\":%d,\"requested\":%d,\"answered\":%zu,\"lost\":%zu,\"unsent\":%zu,\"timeout_ms\":%d,\"min_us\":%.1f,\"p50_us\":%.1f,"
         "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"took_s\":%.2f}\n",
         done, samples, got, lost, unsent, timeout_ms, got ? lat[0] : -1, pct(lat, got, 0.5), pct(lat, got, 0.9),
         pct(lat, got, 0.99), got ? lat[got - 1] : -1, got ? sum / (double)got : -1, took);
  return 0;
}
