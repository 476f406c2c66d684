/*
 * gen-addrs: writes N distinct IPv6 addresses inside a prefix, one per line.
 *
 * --layout scatter (default): host part = ((i + 1) * K) mod 2^bits with K odd, a bijection, so
 *   the addresses are distinct, spread over the whole prefix (the hard case for a trie) and,
 *   for N <= 2^24, have distinct solicited-node groups.
 * --layout seq: base + 1, base + 2, ... (what Docker's IPAM hands out).
 *
 * Usage: gen-addrs --prefix 2003:ab11::8000:0:0:0 --len 66 --count N [--layout scatter|seq]
 */
#include "ndp-frames.h"

#include <getopt.h>

int main(int argc, char **argv) {
  const char *prefix_s = "2003:ab11::8000:0:0:0", *layout = "scatter";
  int len = 66;
  unsigned long long n = 0;
  static struct option opts[] = {{"prefix", required_argument, 0, 'p'}, {"len", required_argument, 0, 'l'},
                                 {"count", required_argument, 0, 'c'},  {"layout", required_argument, 0, 'y'},
                                 {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'p') prefix_s = optarg;
    else if (o == 'l') len = atoi(optarg);
    else if (o == 'c') n = strtoull(optarg, NULL, 10);
    else if (o == 'y') layout = optarg;
    else die_msg("usage: gen-addrs --prefix P --len L --count N [--layout scatter|seq]");
  }
  if (len < 64 || len > 120) die_msg("--len must be in [64, 120]");
  int bits = 128 - len;
  unsigned long long space = bits >= 64 ? ~0ULL : (1ULL << bits);
  if (n == 0 || n >= space) die_msg("--count must be in [1, 2^(128-len))");
  struct in6_addr base;
  if (inet_pton(AF_INET6, prefix_s, &base) != 1) die_msg("bad --prefix");
  uint64_t hi = 0;
  for (int i = 8; i < 16; i++) hi = hi << 8 | base.s6_addr[i];
  uint64_t mask = bits >= 64 ? ~0ULL : (1ULL << bits) - 1;
  hi &= ~mask;
  int scatter = strcmp(layout, "scatter") == 0;
  if (!scatter && strcmp(layout, "seq") != 0) die_msg("--layout must be scatter or seq");
  const uint64_t K = 0x9E3779B97F4A7C15ULL; /* odd: multiplication mod 2^bits is a bijection */
  char buf[INET6_ADDRSTRLEN];
  struct in6_addr a = base;
  for (unsigned long long i = 0; i < n; i++) {
    uint64_t host = scatter ? ((i + 1) * K) & mask : (i + 1) & mask;
    uint64_t low = hi | host;
    for (int b = 15; b >= 8; b--) {
      a.s6_addr[b] = (uint8_t)low;
      low >>= 8;
    }
    inet_ntop(AF_INET6, &a, buf, sizeof buf);
    fputs(buf, stdout);
    fputc('\n', stdout);
  }
  return 0;
}
