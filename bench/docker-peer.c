/* docker-peer (run by bench/docker-latency.ts in Docker host d2): solicits targets every
 * --period-us and reports every NA received on --if with its kernel receive time
 * (CLOCK_REALTIME, ns).
 * stdin commands:  clock | watch ADDR MAXMS [PERIOD_US] | quit   (EOF = quit; --max-seconds bounds it)
 *   watch: solicit ADDR every PERIOD_US (default --period-us) for MAXMS; a second watch of an
 *   address already watched changes its period (next NS at once) and its deadline only.
 * stdout:  hello MAC | clock RT MONO | watching ADDR | na RT TARGET DST FLAGS |
 *          answered ADDR FIRST_NS_RT LAST_NS_RT NA_RT SENT PREV_NS_RT | timeout ADDR SENT
 *          (PREV_NS_RT: the NS sent before LAST_NS_RT, 0 if none: the address was not yet
 *          answerable then, so the answer became possible between PREV_NS_RT and NA_RT)    */
#include "ndp-frames.h"
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sys/prctl.h>

#define MAXW 1024
struct watch { int on; struct in6_addr t; char txt[64]; uint8_t frame[NS_FRAME_LEN]; double next, until, period; long long first_rt, last_rt, prev_rt; int sent; };
static struct watch w[MAXW];

static long long clk(clockid_t id) { struct timespec ts; clock_gettime(id, &ts); return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec; }

int main(int argc, char **argv) {
  const char *ifname = "eth0", *src_s = "2003:ab11::2";
  double period = 0.001, max_s = 3600;
  static struct option opts[] = {{"if", 1, 0, 'i'}, {"src", 1, 0, 's'}, {"period-us", 1, 0, 'p'}, {"max-seconds", 1, 0, 'M'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'i') ifname = optarg; else if (o == 's') src_s = optarg;
    else if (o == 'p') period = atoi(optarg) / 1e6; else if (o == 'M') max_s = atof(optarg);
    else die_msg("usage: docker-peer --if IF --src ADDR [--period-us US] [--max-seconds S]");
  }
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct in6_addr src;
  if (inet_pton(AF_INET6, src_s, &src) != 1) die_msg("bad --src");
  int ifindex; uint8_t mac[6];
  int tx = open_tx_socket(ifname, &ifindex, mac);
  int rx = open_na_socket(ifname, 4 << 20);
  enable_rx_timestamps(rx);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  printf("hello %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  char in[4096]; size_t inlen = 0;
  double t_end = now_s() + max_s;
  for (;;) {
    double now = now_s();
    if (now > t_end) break;
    double next = now + 0.2;
    for (int i = 0; i < MAXW; i++) if (w[i].on && w[i].next < next) next = w[i].next;
    double left = next - now; if (left < 0) left = 0;
    struct pollfd pf[2] = {{.fd = 0, .events = POLLIN}, {.fd = rx, .events = POLLIN}};
    struct timespec to = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    int r = ppoll(pf, 2, &to, NULL);
    if (r < 0 && errno != EINTR) die("ppoll");
    if (r > 0 && (pf[1].revents & POLLIN)) {
      for (;;) {
        uint8_t buf[2048]; struct sockaddr_ll from; long long ts;
        ssize_t n = recv_frame_ts(rx, buf, sizeof buf, &from, &ts);
        if (n < 0) { if (errno == EAGAIN || errno == EINTR) break; die("recvmsg"); }
        if (from.sll_pkttype == PACKET_OUTGOING || n < ND_TARGET_OFF + 16) continue;
        if (!ts) ts = clk(CLOCK_REALTIME);
        char tt[64], dd[64];
        inet_ntop(AF_INET6, buf + ND_TARGET_OFF, tt, sizeof tt);
        inet_ntop(AF_INET6, buf + ETH_HLEN_ + 24, dd, sizeof dd);
        int flags = buf[ETH_HLEN_ + IP6_HLEN_ + 4];
        printf("na %lld %s %s %d\n", ts, tt, dd, flags);
        if (flags & 0x40)
          for (int i = 0; i < MAXW; i++)
            if (w[i].on && memcmp(w[i].t.s6_addr, buf + ND_TARGET_OFF, 16) == 0) {
              printf("answered %s %lld %lld %lld %d %lld\n", w[i].txt, w[i].first_rt, w[i].last_rt, ts, w[i].sent, w[i].prev_rt);
              w[i].on = 0;
            }
      }
    }
    if (r > 0 && (pf[0].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(0, in + inlen, sizeof in - 1 - inlen);
      if (n == 0) break;
      if (n > 0) inlen += (size_t)n;
      char *nl;
      while ((nl = memchr(in, '\n', inlen))) {
        *nl = 0;
        char a[64]; int ms, pus = 0;
        struct in6_addr t;
        if (strcmp(in, "quit") == 0) return 0;
        if (strcmp(in, "clock") == 0) { long long rt = clk(CLOCK_REALTIME), mo = clk(CLOCK_MONOTONIC), rt2 = clk(CLOCK_REALTIME); printf("clock %lld %lld\n", rt + (rt2 - rt) / 2, mo); }
        else if (sscanf(in, "watch %63s %d %d", a, &ms, &pus) >= 2 && inet_pton(AF_INET6, a, &t) == 1 && ms > 0 && pus >= 0) {
          double p = pus > 0 ? pus / 1e6 : period;
          int k = -1;
          for (int i = 0; i < MAXW; i++) if (w[i].on && memcmp(&w[i].t, &t, 16) == 0) { k = i; break; }
          if (k >= 0) {
            w[k].period = p; w[k].next = now_s(); w[k].until = w[k].next + ms / 1000.0;
            printf("watching %s\n", a);
          } else {
            for (int i = 0; i < MAXW; i++) if (!w[i].on) { k = i; break; }
            if (k < 0) printf("error %s (full)\n", a);
            else {
              w[k].t = t;
              snprintf(w[k].txt, sizeof w[k].txt, "%s", a);
              build_ns(w[k].frame, mac, &src, &w[k].t);
              w[k].period = p; w[k].next = now_s(); w[k].until = w[k].next + ms / 1000.0; w[k].first_rt = 0; w[k].last_rt = 0; w[k].prev_rt = 0; w[k].sent = 0; w[k].on = 1;
              printf("watching %s\n", a);
            }
          }
        } else printf("error %s\n", in);
        size_t used = (size_t)(nl - in) + 1;
        memmove(in, nl + 1, inlen - used); inlen -= used;
      }
      if (inlen >= sizeof in - 1) inlen = 0;
    }
    now = now_s();
    for (int i = 0; i < MAXW; i++) {
      if (!w[i].on) continue;
      if (now > w[i].until) { printf("timeout %s %d\n", w[i].txt, w[i].sent); w[i].on = 0; continue; }
      if (w[i].next > now) continue;
      long long rt = clk(CLOCK_REALTIME);
      if (send(tx, w[i].frame, NS_FRAME_LEN, 0) == NS_FRAME_LEN) { if (!w[i].first_rt) w[i].first_rt = rt; w[i].prev_rt = w[i].last_rt; w[i].last_rt = rt; w[i].sent++; }
      w[i].next += w[i].period;
      if (w[i].next < now) w[i].next = now + w[i].period;
    }
  }
  return 0;
}
