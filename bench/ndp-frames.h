/*
 * Shared helpers for the bench tools (ns-blaster, na-counter, latency-probe, gen-addrs,
 * docker-peer): address files, Neighbor Solicitation frames (RFC 4861 section 4.3), the ICMPv6
 * checksum (RFC 4443 section 2.3), the "ICMPv6 type 136" BPF filter, AF_PACKET sockets and
 * kernel receive timestamps.
 * Header-only on purpose: each tool is one `gcc -O2 tool.c` away.
 */
#ifndef NDP_FRAMES_H
#define NDP_FRAMES_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETH_HLEN_ 14
#define IP6_HLEN_ 40
#define NS_FIXED_LEN 24 /* type, code, csum, reserved(4), target(16) */
#define SLLAO_LEN 8
/* Ethernet + IPv6 + NS + source link-layer address option. */
#define NS_FRAME_LEN (ETH_HLEN_ + IP6_HLEN_ + NS_FIXED_LEN + SLLAO_LEN)
/* Offset of the target address in an NS or NA frame without VLAN tag. */
#define ND_TARGET_OFF (ETH_HLEN_ + IP6_HLEN_ + 8)

static inline void die(const char *what) {
  fprintf(stderr, "fatal: %s: %s\n", what, strerror(errno));
  exit(2);
}

static inline void die_msg(const char *msg) {
  fprintf(stderr, "fatal: %s\n", msg);
  exit(2);
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Reads an address file (one IPv6 address per line, '#' comments and blank lines skipped). */
static inline struct in6_addr *read_addrs(const char *path, size_t *count_out) {
  FILE *f = fopen(path, "r");
  if (!f) die(path);
  size_t cap = 1024, n = 0;
  struct in6_addr *v = malloc(cap * sizeof *v);
  if (!v) die("malloc");
  char line[256];
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    char *e = p + strcspn(p, " \t\r\n#");
    if (e == p) continue;
    *e = 0;
    if (n == cap) {
      cap *= 2;
      v = realloc(v, cap * sizeof *v);
      if (!v) die("realloc");
    }
    if (inet_pton(AF_INET6, p, &v[n]) != 1) {
      fprintf(stderr, "fatal: bad IPv6 address in %s: '%s'\n", path, p);
      exit(2);
    }
    n++;
  }
  fclose(f);
  if (n == 0) die_msg("address file is empty");
  *count_out = n;
  return v;
}

static inline uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
  return sum;
}

static inline uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* ICMPv6 checksum over the pseudo-header (src, dst, length, next header 58) and the message. */
static inline uint16_t icmp6_csum(const uint8_t *src, const uint8_t *dst, const uint8_t *msg, size_t len) {
  uint32_t sum = 0;
  sum = csum_add(sum, src, 16);
  sum = csum_add(sum, dst, 16);
  sum += (uint32_t)len;
  sum += 58;
  sum = csum_add(sum, msg, len);
  return csum_fold(sum);
}

/*
 * Builds a multicast NS for `target` into frame[NS_FRAME_LEN]: Ethernet dst 33:33:ff:xx:xx:xx,
 * IPv6 dst the solicited-node group ff02::1:ffxx:xxxx, hop limit 255, SLLAO = src_mac.
 */
static inline void build_ns(uint8_t *frame, const uint8_t src_mac[6], const struct in6_addr *src_ip,
                            const struct in6_addr *target) {
  const uint8_t *t = target->s6_addr;
  uint8_t *eth = frame, *ip = frame + ETH_HLEN_, *icmp = ip + IP6_HLEN_;
  memset(frame, 0, NS_FRAME_LEN);
  eth[0] = 0x33; eth[1] = 0x33; eth[2] = 0xff; eth[3] = t[13]; eth[4] = t[14]; eth[5] = t[15];
  memcpy(eth + 6, src_mac, 6);
  eth[12] = 0x86; eth[13] = 0xdd;
  ip[0] = 0x60;
  uint16_t plen = NS_FIXED_LEN + SLLAO_LEN;
  ip[4] = (uint8_t)(plen >> 8); ip[5] = (uint8_t)plen;
  ip[6] = 58;   /* ICMPv6 */
  ip[7] = 255;  /* hop limit */
  memcpy(ip + 8, src_ip->s6_addr, 16);
  uint8_t *dst = ip + 24;
  dst[0] = 0xff; dst[1] = 0x02; dst[11] = 0x01; dst[12] = 0xff; dst[13] = t[13]; dst[14] = t[14]; dst[15] = t[15];
  icmp[0] = 135; /* NS */
  memcpy(icmp + 8, t, 16);
  icmp[24] = 1; /* source link-layer address option */
  icmp[25] = 1; /* length in units of 8 bytes */
  memcpy(icmp + 26, src_mac, 6);
  uint16_t c = icmp6_csum(ip + 8, dst, icmp, plen);
  icmp[2] = (uint8_t)(c >> 8); icmp[3] = (uint8_t)c;
}

/*
 * Classic BPF: accept IPv6 frames whose next header is ICMPv6 and ICMPv6 type is 136 (NA).
 * Same as `tcpdump -dd 'ip6 and ip6[6] == 58 and ip6[40] == 136'` (no extension headers:
 * NAs carry none).
 */
static struct sock_filter na_filter_insns[] = {
    {0x28, 0, 0, 12},       /* ldh [12]            ethertype */
    {0x15, 0, 5, 0x86dd},   /* jeq #0x86dd         else drop */
    {0x30, 0, 0, 20},       /* ldb [20]            IPv6 next header */
    {0x15, 0, 3, 58},       /* jeq #58             else drop */
    {0x30, 0, 0, 54},       /* ldb [54]            ICMPv6 type */
    {0x15, 0, 1, 136},      /* jeq #136            else drop */
    {0x06, 0, 0, 0x40000},  /* ret #262144         accept */
    {0x06, 0, 0, 0},        /* ret #0              drop */
};

static inline int if_index_of(int fd, const char *ifname, uint8_t mac_out[6]) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) die(ifname);
  int idx = ifr.ifr_ifindex;
  if (mac_out) {
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
    memcpy(mac_out, ifr.ifr_hwaddr.sa_data, 6);
  }
  return idx;
}

/*
 * A send-only packet socket: protocol 0 so nothing is ever queued for reading,
 * bound to the interface, with PACKET_QDISC_BYPASS.
 */
static inline int open_tx_socket(const char *ifname, int *ifindex_out, uint8_t mac_out[6]) {
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) die("socket(AF_PACKET)");
  int idx = if_index_of(fd, ifname, mac_out);
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = idx};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind tx");
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) die("PACKET_QDISC_BYPASS");
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (ifindex_out) *ifindex_out = idx;
  return fd;
}

/*
 * A packet socket that only ever sees NAs: opened with protocol 0 (receives nothing), the
 * filter attached, then bound to ETH_P_ALL on the interface, so no unfiltered frame is queued.
 * rcvbuf: bytes of receive buffer (0 = leave the default).
 */
static inline int open_na_socket(const char *ifname, int rcvbuf) {
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) die("socket(AF_PACKET)");
  struct sock_fprog prog = {.len = sizeof na_filter_insns / sizeof na_filter_insns[0], .filter = na_filter_insns};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) die("SO_ATTACH_FILTER");
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) die("SO_RCVBUF");
  int idx = if_index_of(fd, ifname, NULL);
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = idx};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind rx");
  return fd;
}

/* Ask the kernel to timestamp every frame received on fd (SO_TIMESTAMPNS, CLOCK_REALTIME). */
static inline void enable_rx_timestamps(int fd) {
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0) die("SO_TIMESTAMPNS");
}

/*
 * Receive one frame without blocking. *ts_ns: its kernel receive time (CLOCK_REALTIME, ns; see
 * enable_rx_timestamps), or 0 when the kernel gave none. from (may be NULL): the link-layer
 * source, whose sll_pkttype tells our own outgoing frames apart. Returns the frame length, or
 * -1 with errno (EAGAIN when nothing is queued).
 */
static inline ssize_t recv_frame_ts(int fd, uint8_t *buf, size_t cap, struct sockaddr_ll *from, long long *ts_ns) {
  char ctrl[256];
  struct iovec iov = {buf, cap};
  struct msghdr mh = {.msg_name = from, .msg_namelen = from ? sizeof *from : 0, .msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = ctrl, .msg_controllen = sizeof ctrl};
  ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
  *ts_ns = 0;
  if (n < 0) return n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec t;
      memcpy(&t, CMSG_DATA(c), sizeof t);
      *ts_ns = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    }
  }
  return n;
}

/*
 * Reads and resets PACKET_STATISTICS. For TPACKET_V1/V2 sockets the kernel already adds
 * tp_drops into the returned tp_packets (af_packet.c packet_getsockopt), so tp_packets is
 * "frames that passed the filter", queued or dropped: with every NS answered, the count
 * equals the frames sent (bench/README.md).
 */
static inline void read_stats(int fd, uint64_t *passed, uint64_t *dropped) {
  struct tpacket_stats st;
  socklen_t len = sizeof st;
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) die("PACKET_STATISTICS");
  *passed = st.tp_packets;
  *dropped = st.tp_drops;
}

#endif
