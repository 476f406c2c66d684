/*
 * ns-blaster: paced Neighbor Solicitation sender with a built-in NA counter.
 *
 * Pre-builds one multicast NS frame per target (all addresses of --targets, or an evenly
 * spread --sample of them), then sends them round-robin with sendmmsg() on an AF_PACKET socket
 * with PACKET_QDISC_BYPASS, paced by a token bucket (--rate NS/s, 0 = as fast as possible) for
 * --duration seconds or --count frames, whichever ends first. Bounded in count AND time.
 *
 * NA counting costs no user-space CPU: a second packet socket with a BPF filter for ICMPv6
 * type 136, never read; its PACKET_STATISTICS at the end is the count. It is reset right
 * before the first send and read once when sending stops and once after --drain-ms.
 *
 * With --watch-pid, CPU time (utime+stime from /proc/PID/stat) of that process is sampled at
 * the start and after the drain; /proc/stat is sampled too, for the busy share of each CPU.
 *
 * Output: one JSON object on stdout.
 *
 * Usage: ns-blaster --if IF --targets FILE [--sample K] [--src ADDR] [--rate PPS]
 *                   [--duration S] [--count N] [--batch B] [--drain-ms MS] [--watch-pid PID]
 */
#include "ndp-frames.h"

#include <getopt.h>
#include <sched.h>
#include <sys/prctl.h>

#define MAX_CPUS 64

struct cpu_sample {
  int n;
  unsigned long long busy[MAX_CPUS], total[MAX_CPUS];
};

static void read_cpu(struct cpu_sample *s) {
  FILE *f = fopen("/proc/stat", "r");
  s->n = 0;
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    int cpu;
    unsigned long long v[10] = {0};
    if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') continue;
    if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) < 9)
      continue;
    if (cpu < 0 || cpu >= MAX_CPUS) continue;
    unsigned long long idle = v[3] + v[4];
    unsigned long long tot = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    s->busy[cpu] = tot - idle;
    s->total[cpu] = tot;
    if (cpu + 1 > s->n) s->n = cpu + 1;
  }
  fclose(f);
}

/* utime + stime of a process in clock ticks, or -1. */
static long long read_pid_ticks(int pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  /* after ") " come fields 3.. ; utime is field 14, stime 15 */
  unsigned long long ut = 0, st = 0;
  int field = 2;
  for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
    field++;
    if (field == 14) ut = strtoull(tok, NULL, 10);
    if (field == 15) {
      st = strtoull(tok, NULL, 10);
      break;
    }
  }
  return (long long)(ut + st);
}

int main(int argc, char **argv) {
  const char *ifname = NULL, *targets = NULL, *src_s = "2003:ab11::1";
  double rate = 0, duration = 2.0;
  unsigned long long count = 100000000ULL;
  size_t sample = 0;
  int batch = 0, drain_ms = 300, watch_pid = 0;
  static struct option opts[] = {
      {"if", required_argument, 0, 'i'},        {"targets", required_argument, 0, 't'},
      {"sample", required_argument, 0, 'k'},    {"src", required_argument, 0, 's'},
      {"rate", required_argument, 0, 'r'},      {"duration", required_argument, 0, 'd'},
      {"count", required_argument, 0, 'c'},     {"batch", required_argument, 0, 'b'},
      {"drain-ms", required_argument, 0, 'w'},  {"watch-pid", required_argument, 0, 'p'},
      {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'i': ifname = optarg; break;
      case 't': targets = optarg; break;
      case 'k': sample = strtoull(optarg, NULL, 10); break;
      case 's': src_s = optarg; break;
      case 'r': rate = atof(optarg); break;
      case 'd': duration = atof(optarg); break;
      case 'c': count = strtoull(optarg, NULL, 10); break;
      case 'b': batch = atoi(optarg); break;
      case 'w': drain_ms = atoi(optarg); break;
      case 'p': watch_pid = atoi(optarg); break;
      default: die_msg("usage: ns-blaster --if IF --targets FILE [--sample K] [--rate PPS] [--duration S] ...");
    }
  }
  if (!ifname || !targets) die_msg("--if and --targets are required");
  if (duration <= 0 || duration > 120) die_msg("--duration must be in (0, 120] seconds");
  if (count == 0) die_msg("--count must be > 0");
  if (drain_ms < 0 || drain_ms > 10000) die_msg("--drain-ms must be in [0, 10000]");
  if (batch <= 0) {
    /* small batches at low rates keep the offered load smooth; 64 at full speed */
    batch = rate > 0 ? (int)(rate / 5000) : 64;
    if (batch < 1) batch = 1;
    if (batch > 64) batch = 64;
  }
  if (batch > 1024) batch = 1024;
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  struct in6_addr src_ip;
  if (inet_pton(AF_INET6, src_s, &src_ip) != 1) die_msg("bad --src");
  size_t n_all;
  struct in6_addr *all = read_addrs(targets, &n_all);
  size_t k = (sample == 0 || sample > n_all) ? n_all : sample;

  int ifindex;
  uint8_t mac[6];
  int tx = open_tx_socket(ifname, &ifindex, mac);
  /* tiny receive buffer: every NA after the first few is counted as a drop, never copied */
  int rx = open_na_socket(ifname, 1);

  uint8_t *frames = malloc(k * NS_FRAME_LEN);
  struct mmsghdr *msgs = calloc(k, sizeof *msgs);
  struct iovec *iov = calloc(k, sizeof *iov);
  if (!frames || !msgs || !iov) die("malloc frames");
  for (size_t i = 0; i < k; i++) {
    size_t src_idx = (k == n_all) ? i : (size_t)((unsigned __int128)i * n_all / k);
    build_ns(frames + i * NS_FRAME_LEN, mac, &src_ip, &all[src_idx]);
    iov[i].iov_base = frames + i * NS_FRAME_LEN;
    iov[i].iov_len = NS_FRAME_LEN;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  free(all);

  uint64_t p0, d0, p1, d1, p2, d2;
  struct cpu_sample c0, c1;
  long long pt0 = watch_pid ? read_pid_ticks(watch_pid) : -1;
  read_cpu(&c0);
  read_stats(rx, &p0, &d0); /* reset */

  unsigned long long sent = 0, syscalls = 0, rx_drops = 0;
  size_t pos = 0;
  double t0 = now_s(), deadline = t0 + duration, last = t0;
  /* token bucket: depth of 2 batches or 2 ms of traffic, so sleep overshoot does not lower the rate */
  double depth = batch * 2.0;
  if (rate * 0.002 > depth) depth = rate * 0.002;
  double credit = batch;
  for (;;) {
    double t = now_s();
    if (t >= deadline || sent + rx_drops >= count) break;
    int n = batch;
    if (rate > 0) {
      credit += (t - last) * rate;
      last = t;
      if (credit > depth) credit = depth;
      if (credit < 1.0 || (credit < batch && credit < (double)(count - sent - rx_drops))) {
        double wait = (batch - credit) / rate;
        if (t + wait > deadline) wait = deadline - t;
        sleep_s(wait);
        continue;
      }
      n = (int)credit;
      if (n > batch) n = batch;
    }
    if ((unsigned long long)n > count - sent - rx_drops) n = (int)(count - sent - rx_drops);
    if ((size_t)n > k - pos) n = (int)(k - pos);
    int r = sendmmsg(tx, msgs + pos, (unsigned)n, 0);
    syscalls++;
    int failed = 0;
    if (r < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) die("sendmmsg");
      r = 0;
      failed = errno == ENOBUFS;
      if (!failed) sched_yield();
    } else if (r < n) {
      failed = 1; /* sendmmsg stops at the first failed message and hides its error */
    }
    /*
     * ENOBUFS here means veth_xmit dropped the frame: the receiving CPU's backlog
     * (netdev_max_backlog) was full because the responder side could not keep up. That frame
     * was offered and lost, exactly like a NIC ring overflow, so it counts as offered, not retried.
     */
    sent += (unsigned long long)r;
    rx_drops += (unsigned long long)failed;
    if (rate > 0) credit -= r + failed;
    pos += (size_t)(r + failed);
    if (pos >= k) pos -= k;
  }
  double t1 = now_s();
  read_stats(rx, &p1, &d1);
  sleep_s(drain_ms / 1000.0);
  read_stats(rx, &p2, &d2);
  double t2 = now_s();
  read_cpu(&c1);
  long long pt1 = watch_pid ? read_pid_ticks(watch_pid) : -1;

  double elapsed = t1 - t0;
  uint64_t answered = p1 + p2;
  long hz = sysconf(_SC_CLK_TCK);
  unsigned long long offered = sent + rx_drops;
  printf("{\"target_rate\":%.0f,\"targets\":%zu,\"batch\":%d,\"offered\":%llu,\"delivered\":%llu,"
         "\"veth_drops\":%llu,\"syscalls\":%llu,\"elapsed_s\":%.4f,\"offered_pps\":%.1f,\"answered\":%llu,"
         "\"answered_in_window\":%llu,\"counter_queue_drops\":%llu,\"answered_pps\":%.1f,"
         "\"loss\":%.5f,\"window_s\":%.4f",
         rate, k, batch, offered, sent, rx_drops, syscalls, elapsed, offered / elapsed,
         (unsigned long long)answered, (unsigned long long)p1, (unsigned long long)(d1 + d2), answered / elapsed,
         offered ? 1.0 - (double)answered / (double)offered : 0.0, t2 - t0);
  if (watch_pid) {
    if (pt0 >= 0 && pt1 >= 0)
      printf(",\"pid_cpu_s\":%.4f,\"pid_cpu_pct\":%.2f", (double)(pt1 - pt0) / hz,
             100.0 * (double)(pt1 - pt0) / hz / (t2 - t0));
    else
      printf(",\"pid_cpu_s\":null,\"pid_cpu_pct\":null,\"pid_gone\":true");
  }
  printf(",\"cpu_busy_pct\":[");
  for (int i = 0; i < c1.n && i < c0.n; i++) {
    unsigned long long tot = c1.total[i] - c0.total[i], busy = c1.busy[i] - c0.busy[i];
    printf("%s%.1f", i ? "," : "", tot ? 100.0 * (double)busy / (double)tot : 0.0);
  }
  printf("]}\n");
  return 0;
}
