/** `--help` texts. Kept beside the flags they describe; README shows the same. */

export const MAIN_HELP = `ndp-responder: answer IPv6 Neighbor Solicitations for container addresses on a Docker host

Usage: ndp-responder <command> [options]

Commands:
  run       answer NS live on an interface (static rules and/or Docker containers)
  replay    replay a pcap file through the engine and write the answers to a pcap file
  explain   say whether, and by which rule, an address would be answered
  status    ask the running daemon: uplinks, back end, rules by source, Docker, counters
  doctor    check the host (capabilities, forwarding, routes, ip6tables, proxy_ndp, other
            answerers, Docker's IPv6 settings) and print the exact fix for each finding
  demo      build the two-host lab in network namespaces and show it working

Run 'ndp-responder <command> --help' for the options of a command.
`;

const RULES_HELP = `Which addresses are answered (repeatable; the longest matching rule wins, an
exclusion beats an answer of the same length, the interface's own addresses are never answered):
  --prefix CIDR          answer every target inside CIDR (e.g. 2003:ab11:0:0:8000::/66)
  --address ADDR         answer exactly ADDR
  --address-file FILE    answer every address listed in FILE (one per line, # comments)
  --exclude CIDR         never answer targets inside CIDR`;

const ANSWER_HELP = `How answers are built:
  --source-policy P      IPv6 source of each NA: 'target' (default: the NA comes from the address
                         it speaks for, as the container itself would answer; ndisc6 and some
                         providers' filters only accept that) or 'link-local' (the interface's
                         fe80:: address, RFC 4861's letter)
  --router               set the R flag (we are a router)
  --override MODE        the O flag: 'auto' (default: O=1 for an exact address we know is ours,
                         a container or an --address, once its probe found no other owner; O=0
                         for an answer that comes only from a prefix rule, so a real owner's NA
                         wins, RFC 4861 7.2.8), 'always' or 'never'
  --no-override          the same as --override never
  --vlan ID              also answer NS tagged with this 802.1Q VLAN ID, 1..4094 (repeatable, or
                         comma-separated); the NA carries the NS's tag. By default only untagged
                         NS (and VID 0, priority-tagged) are answered: a tagged NS is dropped as
                         vlan-not-served, so answers never leak into VLANs of a trunk`;

const DOCKER_URL_HELP = `Docker URLs (--docker URL or $DOCKER_HOST):
  unix:///path, /path    the engine's Unix socket (TLS variables do not apply)
  tcp://HOST[:PORT]      plain HTTP on port 2375; TLS on port 2376 when DOCKER_TLS_VERIFY or
                         DOCKER_TLS is set (to anything non-empty, as the docker CLI reads them)
  https://HOST[:PORT]    TLS, port 2376 by default
  http://HOST[:PORT]     plain HTTP; refused while DOCKER_TLS_VERIFY, DOCKER_TLS or
                         DOCKER_CERT_PATH is set (so is tcp:// with DOCKER_CERT_PATH alone)
  HOST is a name, an IPv4 address or an IPv6 address in brackets: tcp://[2001:db8::1]:2376.
  TLS reads ca.pem, cert.pem and key.pem from $DOCKER_CERT_PATH (else $DOCKER_CONFIG, else
  ~/.docker); ca.pem is required with DOCKER_TLS_VERIFY, else the system's CAs are used when it
  is absent. The engine's certificate is always verified (also under DOCKER_TLS). ssh:// is not
  supported.`;

export const RUN_HELP = `Usage: ndp-responder run [--interface IF] [rules] [options]
       ndp-responder run --config FILE

Answer Neighbor Solicitations on one or more uplinks until SIGINT/SIGTERM. SIGHUP reloads the
config file and the address files without a gap (a broken file is refused, the old rules stay).

With no flags at all: the uplink is the interface of the default IPv6 route, Docker is followed
when its socket exists (DOCKER_HOST or /var/run/docker.sock), and the container addresses inside
the uplink's on-link prefixes are answered. The first log line ("configuration") says what was
chosen and why.

Configuration:
  -c, --config FILE      YAML (or JSON) file: keys are these long flag names; "uplinks:" is a list
                         of per-interface blocks (interface, prefix, address, address-file,
                         exclude, and per-uplink answer/packet settings); other top-level keys
                         are defaults and process-wide settings (docker, metrics, log-level ...)
  NDP_RESPONDER_*        environment variables, the flag name in capitals with _ for -
                         (NDP_RESPONDER_INTERFACE=eth0, NDP_RESPONDER_PREFIX="a::/64,b::/64",
                         NDP_RESPONDER_DOCKER=1, NDP_RESPONDER_CONFIG=FILE)
  Precedence: flags > environment > file. An --interface (flag or environment) names the one
  uplink and the file's "uplinks:" list is not used.
  --wait-interface       start even when the uplink does not exist yet; serve it once it appears
  --control PATH         the control socket for 'status', 'explain' and reload (default
                         /run/ndp-responder/control.sock, mode 0600)
  --no-control           no control socket

${RULES_HELP}

Docker:
  --docker [URL]         follow the containers of this Docker engine (default: $DOCKER_HOST, then
                         unix:///var/run/docker.sock); their IPv6 addresses inside the uplink's
                         on-link prefixes (or inside --prefix rules when given) are answered,
                         except on macvlan and ipvlan networks (those containers are on the
                         link themselves and answer for themselves)
  --docker-network NAME  only containers' addresses on these Docker networks (repeatable)
  --docker-label-opt-in  only containers labelled ndp-responder.enable=true
                         (by default every container is answered unless labelled =false)

${DOCKER_URL_HELP}

${ANSWER_HELP}

Claiming only what is ours:
  --no-route-check       answer without consulting the host's routes (by default a target is
                         answered only when the host routes it away from the uplink: to docker0,
                         a br-*, a veth; an exact --address is answered regardless)
  Always: an address another node on the link is seen using (the source of its NS, the target
  of its NA or DAD probe, a router) is never answered; a new container address is probed first
  (answered with O=0 meanwhile) and announced only when no other node owns it.

Packets:
  --interface IF         the uplink to answer on (default: the default IPv6 route's interface)
  --backend B            'afpacket' (default: native AF_PACKET socket, batched) or 'pcap'
                         (node_pcap capture + raw-socket send: portable fallback)
  --max-groups N         above N solicited-node groups, receive all multicast instead of
                         programming one filter entry per group (default 4096)
  --no-mld               do not send MLD reports (use when no switch snoops MLD)
  --promiscuous          receive every frame on the link (last resort)
  --no-announce          do not send unsolicited NAs when an address appears
  --nice N               scheduling priority of the answering thread, -20..0 (default -10: under
                         an NS flood the kernel's receive work would otherwise take half of the
                         responder's CPU for packets it then cannot answer; 0 leaves it alone;
                         needs CAP_SYS_NICE, silently kept otherwise)
  --realtime N           SCHED_FIFO priority of the answering thread, 0..99 (default 1; 0: off).
                         It then runs before the kernel's softirq thread whenever it has frames,
                         so under a flood the kernel drops the excess before copying it to us;
                         it still sleeps when idle. Needs CAP_SYS_NICE (else normal priority)

Operations:
  --metrics HOST:PORT    serve /metrics (Prometheus), /explain?address=A, /healthz, /readyz
                         (e.g. [::1]:9464; docs/http.md)
  --log-level L          fatal, error, warn, info (default), debug (one line per decision), trace
  --log-format F         'json' (one JSON line per event), 'pretty' (readable lines) or 'auto'
                         (default: pretty when stdout is a terminal, JSON when it is a pipe or
                         a file). The 'ready' line says what is served; an --address-file load
                         is logged with its count and time.
  -h, --help             this help

When a container's address is confirmed (no other owner answered its probe), unsolicited NAs go
out and one NS from that address asks for the default router (the gateway of ::/0 on IF; needs
the route check, on by default), so a router that ignores unsolicited NAs learns the address.
`;

export const REPLAY_HELP = `Usage: ndp-responder replay IN.pcap -o OUT.pcap --mac MAC [rules] [options]

Feed every frame of IN.pcap (Ethernet) to the engine and write exactly the frames the responder
would send, in order, to OUT.pcap. Prints a summary: frames read, answered, dropped per reason.
Without any rule nothing is answered: replay says so on stderr and still runs (every frame is a
drop with its reason).

  -o, --output FILE      where the answers go (required); '-' writes the pcap to stdout (then
                         the summary and --explain lines go to stderr), e.g.
                         ndp-responder replay in.pcap -o - ... | tcpdump -r - -n
  --mac MAC              the host's MAC (Ethernet source and target link-layer address)
  --link-local ADDR      the host's link-local address (default: EUI-64 from --mac)
  --explain              print one line per input frame: index, target, decision, reason, rule
  --json                 print the summary as JSON
  --routes FILE          check routes as 'run' does, against FILE (the output of
                         'ip -j -6 route show table all' on the host; without it no route check)
  --uplink IF            with --routes: the interface the capture was taken on

${RULES_HELP}

${ANSWER_HELP}

Exit status: 0 done, 2 bad arguments or unreadable input.
`;

export const EXPLAIN_HELP = `Usage: ndp-responder explain ADDR... [rules] [--interface IF] [--docker [URL]]
       ndp-responder explain ADDR... [--control PATH]
       ndp-responder explain ADDR... --daemon http://HOST:PORT

Say for each ADDR whether an NS for it would be answered, and why: the winning rule, where it
came from (flag, container, network, interface address) and every other rule covering ADDR.
With no rules, no --interface and no --docker, the running daemon is asked over its control
socket (--control PATH, default /run/ndp-responder/control.sock); when none listens, the answer
is worked out offline (with a note). With --daemon, ask a running
'ndp-responder run --metrics HOST:PORT' over HTTP instead.

${RULES_HELP}

  --interface IF         also load IF's own addresses (never answered) and check the host's
                         routes as 'run' does
  --no-route-check       with --interface: do not check routes (as 'run --no-route-check')
  --docker [URL]         also load the running containers of this Docker engine (URL forms
                         and TLS: see 'ndp-responder run --help')
  --control PATH         the daemon's control socket (when no rules are given)
  --json                 print JSON

${ANSWER_HELP}
`;

export const DOCTOR_HELP = `Usage: ndp-responder doctor --interface IF [--prefix RANGE...] [--docker [URL]] [--json]

Check what ndp-responder needs and what gets in its way. One line per finding, 'ok', 'WARN',
'FAIL' or 'info', and for every finding to act on the exact fix ('; fix: ...'): the sysctl, the
route, the ip6tables rule, the daemon.json key. Checked:
  capabilities held      CAP_NET_RAW needed (CAP_SYS_NICE for --nice, --realtime)
  interface              present and up, its MAC, link-local address and on-link prefixes
  back ends              the native addon opens a socket; node_pcap loads
  forwarding             net.ipv6.conf.all.forwarding=1 (containers' traffic must be routed);
                         accept_ra=2 on IF when forwarding is on
  other answerers        kernel proxy_ndp with proxy entries on IF; ndppd, npd6 or ndpresponder
                         running in this network namespace
  ip6tables FORWARD      the policy, and with DROP whether rules accept each range both ways
                         (skipped when ip6tables is not installed)
  route to each range    each --prefix RANGE and each IPv6 subnet of Docker's bridge networks
                         must be routed away from IF (to docker0, a br-*), as 'run' requires
  Docker                 reachable; IPv6 on its bridge networks (daemon.json "ipv6",
                         "fixed-cidr-v6") and whether it manages ip6tables ("ip6tables")

  -i, --interface IF     the uplink (required)
  --prefix RANGE         a container range you serve (repeatable): its route is checked
  --docker [URL]         also ask this Docker engine (URL forms: 'ndp-responder run --help')
  --json                 the findings as JSON: [{level, check, detail, fix?}]

Everything goes to stdout; nothing is printed on stderr. Exit status 0 when nothing failed,
1 otherwise.
`;

export const STATUS_HELP = `Usage: ndp-responder status [--control PATH] [--json] [--reload]

Ask the running daemon over its control socket (default /run/ndp-responder/control.sock): its
uplinks (link state, MAC, back end), rules by source (static, host, docker), Docker's state,
counters, multicast groups, reloads.
  --control PATH         the daemon's control socket
  --json                 print JSON
  --reload               make the daemon reload its config file and address files (as SIGHUP)
`;

export const DEMO_HELP = `Usage: ndp-responder demo [--keep] [--backend afpacket|pcap]

Builds the seed's two-host topology in network namespaces (no Docker needed): a "switch"
bridge, hosts h1 and h2 on 2003:ab11::/64, a container range behind each (2003:ab11:0:0:8000::/66
and 2003:ab11:0:0:c000::/66) on a veth "container", forwarding on, no kernel proxy entries.
Shows the cross-host ping failing, starts ndp-responder on both hosts, shows it succeeding and
the neighbour tables. Everything is removed at the end (unless --keep).
`;

/** docs/cli.md: every command's help, generated (scripts/make-cli-doc.ts). */
export function renderCliDoc(): string {
  const sections: [string, string][] = [
    ['ndp-responder', MAIN_HELP],
    ['run', RUN_HELP],
    ['replay', REPLAY_HELP],
    ['explain', EXPLAIN_HELP],
    ['status', STATUS_HELP],
    ['doctor', DOCTOR_HELP],
    ['demo', DEMO_HELP],
  ];
  const body = sections.map(([name, text]) => `## ${name}\n\n\`\`\`text\n${text.trimEnd()}\n\`\`\`\n`).join('\n');
  return `# Command-line reference\n\nGenerated from the program's own \`--help\` texts by \`scripts/make-cli-doc.ts\`; do not edit by hand.\n\n${body}`;
}
