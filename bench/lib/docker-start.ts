/**
 * (a) Start latency: containers started one after another on d1, each address known before
 * `docker start` (predicted from the MAC Docker is given) or read by `docker inspect`; per
 * container, when the responder answered and announced it, relative to the CLI returning.
 */
import { DockerLab, IMAGE } from '../../src/lab/docker-lab.js';
import { formatAddress, parseAddress } from '../../src/addr/index.js';
import type { Options } from './docker-options.js';
import type { Peer } from './docker-peer.js';
import type { Responder } from './docker-responder.js';
import { canon, dockerApi, monoNs, SLEEPER, timedRun, waitUntil } from './docker-util.js';
import { sleep } from '../../src/lab/process.js';

/** A MAC in 02:42:bb:00:xx:yy (Docker's own are 02:42:ac:11:...), and the IPv6 address Docker derives from it. */
export function macFor(i: number, cidrBase: string): { mac: string; addr: string } {
  const hi = (i >> 8) & 0xff;
  const lo = i & 0xff;
  const mac = `02:42:bb:00:${hi.toString(16).padStart(2, '0')}:${lo.toString(16).padStart(2, '0')}`;
  const b = parseAddress(cidrBase);
  const m = [0x02, 0x42, 0xbb, 0x00, hi, lo];
  for (let k = 0; k < 6; k++) b[10 + k] = m[k]!;
  return { mac, addr: formatAddress(b) };
}

export interface Sample {
  name: string;
  method: 'predicted' | 'inspect';
  address: string;
  predictedOk: boolean;
  /** Wall time of `docker start` / `docker run -d` itself, ms. */
  cliMs: number;
  /** All below: ms relative to the CLI returning (negative = before). */
  answeredMs: number | null;
  announcedMs: number | null;
  /** Docker's own "start" event (dockerd clock). */
  dockerEventMs: number | null;
  /** The responder's "docker addresses updated" line (pino time, 1 ms resolution). */
  responderTableMs: number | null;
  /** inspect method: when the address was known. */
  addressKnownMs: number | null;
  /** NSs sent before the answer, and the answered NS's last send (ms rel. CLI return). */
  nsSent: number | null;
  lastNsMs: number | null;
  note?: string;
}

export async function startLatency(
  lab: DockerLab,
  peer: Peer,
  resp: Responder,
  opts: Options,
  events: Map<string, bigint>,
): Promise<Sample[]> {
  const d1 = lab.host('d1');
  const base = d1.cidr.split('/')[0]!;
  const out: Sample[] = [];
  const rel = (rtNs: bigint | undefined | null, refRtNs: bigint): number | null =>
    rtNs === undefined || rtNs === null ? null : Number(rtNs - refRtNs) / 1e6;
  const total = opts.containers + opts.naive;
  for (let i = 0; i < total; i++) {
    const predicted = i < opts.containers;
    const name = `${predicted ? 'lat' : 'naive'}${i}`;
    let addr: string;
    let mac: string | undefined;
    if (predicted) {
      ({ mac, addr } = macFor(i + 1, base));
      const c = await dockerApi(d1.sock, 'POST', `/v1.41/containers/create?name=${name}`, { Image: IMAGE, Cmd: SLEEPER, MacAddress: mac });
      if (c.status !== 201) throw new Error(`create ${name}: ${c.status} ${JSON.stringify(c.json)}`);
    } else {
      addr = '';
    }
    if (resp.exited)
      throw new Error(
        `the responder exited during (a) (code ${resp.exited.code}, signal ${resp.exited.signal}) after ${out.length} containers`,
      );
    const offset = await peer.clockOffset();
    let answered: Promise<string | undefined> | undefined;
    if (predicted) {
      answered = peer.expect(new RegExp(`^(answered|timeout) ${addr} `), 8000);
      const ack = peer.expect(new RegExp(`^watching ${addr}$`), 2000);
      peer.send(`watch ${addr} 6000`);
      if ((await ack) === undefined) throw new Error('docker-peer did not take the watch');
    }
    const cli = predicted
      ? await timedRun('docker', ['-H', d1.url, 'start', name], 30_000)
      : await timedRun('docker', ['-H', d1.url, 'run', '-d', '--name', name, IMAGE, ...SLEEPER], 30_000);
    if (cli.code !== 0) throw new Error(`docker ${predicted ? 'start' : 'run'} ${name} failed: ${cli.out.trim()}`);
    const refRt = cli.exitNs + offset;
    const cliMs = Number(cli.exitNs - cli.startNs) / 1e6;
    let knownMs: number | null = null;
    const got = (await lab.containerAddresses('d1', name))[0];
    if (!predicted) {
      knownMs = Number(monoNs() + offset - refRt) / 1e6;
      addr = got ?? '';
      if (addr !== '') {
        answered = peer.expect(new RegExp(`^(answered|timeout) ${addr} `), 8000);
        peer.send(`watch ${addr} 6000`);
      }
    }
    const line = answered ? await answered : undefined;
    let answeredMs: number | null = null;
    let nsSent: number | null = null;
    let lastNsMs: number | null = null;
    let note: string | undefined;
    if (line?.startsWith('answered ')) {
      const [, , , last, na, sent] = line.split(' ');
      answeredMs = rel(BigInt(na!), refRt);
      lastNsMs = rel(BigInt(last!), refRt);
      nsSent = Number(sent);
    } else {
      note = line === undefined ? 'peer gave no verdict' : `not answered within 6 s (${line})`;
    }
    // The first unsolicited NA comes within ~ms; the 2nd and 3rd a second apart. Wait for the first.
    const una = await waitUntil(() => peer.firstUnsolicited(addr, refRt - 5_000_000_000n), 3000, 5);
    const tableMs = resp.addedAt(addr);
    const ev = await waitUntil(() => events.get(name), 1000, 5);
    const predictedOk = got !== undefined && canon(got) === canon(addr);
    if (predicted && !predictedOk) note = `predicted ${addr} but docker says ${got}`;
    const s: Sample = {
      name,
      method: predicted ? 'predicted' : 'inspect',
      address: addr,
      predictedOk,
      cliMs: Math.round(cliMs * 1000) / 1000,
      answeredMs,
      announcedMs: una ? rel(una.rtNs, refRt) : null,
      dockerEventMs: ev === undefined ? null : rel(ev, refRt),
      responderTableMs: tableMs === undefined ? null : tableMs - Number(refRt) / 1e6,
      addressKnownMs: knownMs,
      nsSent,
      lastNsMs,
      ...(note ? { note } : {}),
    };
    out.push(s);
    const f = (x: number | null): string => (x === null ? '   -   ' : x.toFixed(2).padStart(7));
    console.log(
      `  ${name.padEnd(8)} ${addr.padEnd(28)} start ${f(s.cliMs)} | event ${f(s.dockerEventMs)} table ${f(s.responderTableMs)} answered ${f(s.answeredMs)} announced ${f(s.announcedMs)}${note ? '  ! ' + note : ''}`,
    );
    await sleep(100);
  }
  return out;
}
