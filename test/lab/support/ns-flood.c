/*
 * ns-flood: a Neighbor Solicitation flood from many forged sources, for the flood and fault lab
 * tests (test/lab/flood.test.ts, test/lab/faults.test.ts).
 *
 * Pre-builds --sources frames. Frame i comes from its own forged node: source MAC
 * 02:f1:ii:ii:ii:ii (locally administered unicast) and source IPv6 --src-base + i, and asks for a
 * target inside the answered range (--in + a spread offset) on even i and outside it (--out +
 * offset) on odd i. They are sent round-robin with sendmmsg() on an AF_PACKET socket with
 * PACKET_QDISC_BYPASS, as fast as the socket takes them (or paced with --rate NS/s), for
 * --duration seconds or --count frames, whichever ends first: bounded in count AND time
 * (SIGTERM ends it earlier, with the summary).
 *
 * NAs are counted without reading them (bench/ndp-frames.h: a type-136 BPF socket whose
 * PACKET_STATISTICS is the count).
 *
 * Output: one JSON object on stdout: {"sent","errors","elapsed_s","rate","na"}.
 *
 * Usage: ns-flood --if IF --sources N --in ADDR --out ADDR --src-base ADDR
 *                 [--duration S] [--count N] [--rate PPS] [--batch B]
 */
#include "../../../bench/ndp-frames.h"

#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>

/* SIGTERM/SIGINT end the flood early; the summary is still printed. */
static volatile sig_atomic_t stop_now = 0;
static void on_stop(int sig) {
  (void)sig;
  stop_now = 1;
}

/* addr += v on the low 32 bits (no carry beyond: the bases leave them zero). */
static void add_low32(struct in6_addr *a, uint32_t v) {
  uint8_t *b = a->s6_addr;
  uint32_t low = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
  low += v;
  b[12] = (uint8_t)(low >> 24); b[13] = (uint8_t)(low >> 16); b[14] = (uint8_t)(low >> 8); b[15] = (uint8_t)low;
}

int main(int argc, char **argv) {
  const char *ifname = NULL, *in_s = NULL, *out_s = NULL, *src_s = NULL;
  double duration = 2.0, rate = 0;
  unsigned long long count = 100000000ULL;
  size_t sources = 0;
  int batch = 64;
  static struct option opts[] = {
      {"if", required_argument, 0, 'i'},       {"sources", required_argument, 0, 'n'},
      {"in", required_argument, 0, 'I'},       {"out", required_argument, 0, 'O'},
      {"src-base", required_argument, 0, 's'}, {"duration", required_argument, 0, 'd'},
      {"count", required_argument, 0, 'c'},    {"rate", required_argument, 0, 'r'},
      {"batch", required_argument, 0, 'b'},    {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'i': ifname = optarg; break;
      case 'n': sources = strtoull(optarg, NULL, 10); break;
      case 'I': in_s = optarg; break;
      case 'O': out_s = optarg; break;
      case 's': src_s = optarg; break;
      case 'd': duration = atof(optarg); break;
      case 'c': count = strtoull(optarg, NULL, 10); break;
      case 'r': rate = atof(optarg); break;
      case 'b': batch = atoi(optarg); break;
      default: die_msg("usage: ns-flood --if IF --sources N --in ADDR --out ADDR --src-base ADDR [--duration S] ...");
    }
  }
  if (!ifname || !in_s || !out_s || !src_s) die_msg("--if, --in, --out and --src-base are required");
  if (sources < 1 || sources > 1000000) die_msg("--sources must be in [1, 1000000]");
  if (duration <= 0 || duration > 120) die_msg("--duration must be in (0, 120] seconds");
  if (count == 0) die_msg("--count must be > 0");
  if (rate < 0) die_msg("--rate must be >= 0");
  if (batch < 1 || batch > 1024) die_msg("--batch must be in [1, 1024]");
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  struct in6_addr in_base, out_base, src_base;
  if (inet_pton(AF_INET6, in_s, &in_base) != 1) die_msg("bad --in");
  if (inet_pton(AF_INET6, out_s, &out_base) != 1) die_msg("bad --out");
  if (inet_pton(AF_INET6, src_s, &src_base) != 1) die_msg("bad --src-base");

  int ifindex;
  uint8_t own_mac[6];
  int tx = open_tx_socket(ifname, &ifindex, own_mac);
  int rx = open_na_socket(ifname, 1);

  uint8_t *frames = malloc(sources * NS_FRAME_LEN);
  struct mmsghdr *msgs = calloc(sources, sizeof *msgs);
  struct iovec *iov = calloc(sources, sizeof *iov);
  if (!frames || !msgs || !iov) die("malloc frames");
  for (size_t i = 0; i < sources; i++) {
    uint8_t mac[6] = {0x02, 0xf1, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    struct in6_addr src = src_base, target = (i % 2 == 0) ? in_base : out_base;
    add_low32(&src, (uint32_t)i + 1);
    /* spread targets over many solicited-node groups (Knuth's multiplicative hash) */
    add_low32(&target, ((uint32_t)i * 2654435761u) & 0x00ffffffu);
    build_ns(frames + i * NS_FRAME_LEN, mac, &src, &target);
    iov[i].iov_base = frames + i * NS_FRAME_LEN;
    iov[i].iov_len = NS_FRAME_LEN;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  uint64_t p0, d0, p1, d1;
  read_stats(rx, &p0, &d0); /* reset */
  unsigned long long sent = 0, errors = 0;
  size_t next = 0;
  double t0 = now_s(), end = t0 + duration;
  for (;;) {
    double now = now_s();
    if (now >= end || sent >= count || stop_now) break;
    if (rate > 0) {
      double due = t0 + (double)sent / rate;
      if (due > now) {
        sleep_s(due - now);
        continue;
      }
    }
    unsigned int n = (unsigned int)batch;
    if (n > sources - next) n = (unsigned int)(sources - next);
    if (n > count - sent) n = (unsigned int)(count - sent);
    int r = sendmmsg(tx, msgs + next, n, 0);
    if (r < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) die("sendmmsg");
      errors++;
      continue;
    }
    sent += (unsigned long long)r;
    next = (next + (size_t)r) % sources;
  }
  double elapsed = now_s() - t0;
  sleep_s(0.2); /* let the last answers arrive */
  read_stats(rx, &p1, &d1);
  printf("{\"sent\":%llu,\"errors\":%llu,\"elapsed_s\":%.3f,\"rate\":%.0f,\"na\":%llu,\"sources\":%zu}\n", sent, errors,
         elapsed, (double)sent / elapsed, (unsigned long long)p1, sources);
  return 0;
}
