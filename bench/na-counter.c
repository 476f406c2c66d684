/*
 * na-counter: counts Neighbor Advertisements seen on an interface for a while, at no
 * user-space cost: a packet socket with a BPF filter for ICMPv6 type 136 that is never read;
 * at the end, PACKET_STATISTICS is the count. (ns-blaster has the same counter built in; this
 * one is for counting around some other sender, e.g. trafgen or tcpreplay.)
 *
 * Usage: na-counter --if IF --duration S     prints {"answered":N,"queue_drops":D,"elapsed_s":T}
 */
#include "ndp-frames.h"

#include <getopt.h>

int main(int argc, char **argv) {
  const char *ifname = NULL;
  double duration = 1.0;
  static struct option opts[] = {{"if", required_argument, 0, 'i'}, {"duration", required_argument, 0, 'd'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'i') ifname = optarg;
    else if (o == 'd') duration = atof(optarg);
    else die_msg("usage: na-counter --if IF --duration S");
  }
  if (!ifname) die_msg("--if is required");
  if (duration <= 0 || duration > 3600) die_msg("--duration must be in (0, 3600] seconds");
  int rx = open_na_socket(ifname, 1);
  uint64_t p, d;
  read_stats(rx, &p, &d);
  double t0 = now_s();
  sleep_s(duration);
  read_stats(rx, &p, &d);
  printf("{\"answered\":%llu,\"queue_drops\":%llu,\"elapsed_s\":%.4f}\n", (unsigned long long)p,
         (unsigned long long)d, now_s() - t0);
  return 0;
}
