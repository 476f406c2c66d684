/**
 * deploy/ndp-responder.service: `systemd-analyze verify` accepts it (with ExecStart pointed at this
 * checkout's node and dist/, since verify requires the program to exist), it carries the
 * hardening the daemon is meant to run under, and `systemd-analyze security` rates it well.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const root = new URL('../..', import.meta.url).pathname;
const UNIT = join(root, 'deploy', 'ndp-responder.service');
const CLI = join(root, 'dist', 'src', 'cli.js');
const text = readFileSync(UNIT, 'utf8');

/** Every `Key=value` of a section, in order (comments and blank lines skipped). */
function section(unit: string, name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      current = head[1]!;
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || current !== name) continue;
    out.set(kv[1]!, [...(out.get(kv[1]!) ?? []), kv[2]!]);
  }
  return out;
}

/** Write the unit with ExecStart replaced into a temp dir, run `systemd-analyze ARGS... FILE`. */
function analyze(args: string[], execStart: string): { code: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ndp-unit-'));
  try {
    const file = join(dir, 'ndp-responder.service');
    writeFileSync(file, text.replace(/^ExecStart=.*$/m, `ExecStart=${execStart}`));
    const r = spawnSync('systemd-analyze', [...args, file], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) throw r.error;
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const service = section(text, 'Service');
const one = (k: string): string | undefined => service.get(k)?.at(-1);
const words = (k: string): string[] => (one(k) ?? '').split(/\s+/).filter(Boolean).sort();

t.test('the hardening keys are there', async (t) => {
  const caps = ['CAP_NET_RAW', 'CAP_SYS_NICE'];
  t.same(words('AmbientCapabilities'), caps, 'AmbientCapabilities: exactly NET_RAW and SYS_NICE (docs/privileges.md)');
  t.same(words('CapabilityBoundingSet'), caps, 'CapabilityBoundingSet: the same, nothing else');
  t.equal(one('NoNewPrivileges'), 'yes');
  t.equal(one('ProtectSystem'), 'strict');
  t.equal(one('Restart'), 'on-failure');
  t.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID', 'reload sends SIGHUP to the daemon');
  t.match(one('ExecStart') ?? '', /^\/\S+ run --interface \S+/, 'ExecStart runs the daemon');
  t.equal(one('User'), undefined, 'no fixed user: DynamicUser');
  t.equal(one('DynamicUser'), 'yes');
  t.same(words('RestrictAddressFamilies'), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX']);
  t.equal(one('PrivateNetwork'), undefined, 'the host network stays visible');
  t.equal(one('MemoryDenyWriteExecute'), undefined, "not set: V8's JIT needs writable code pages");
});

t.test('systemd-analyze verify accepts the unit', async (t) => {
  t.ok(existsSync(CLI), `${CLI} exists (npm run build)`);
  const ok = analyze(['verify'], `${process.execPath} ${CLI} run --interface eth0 --docker`);
  t.equal(ok.code, 0, 'verify exits 0');
  t.notMatch(ok.out, /ndp-responder\.service/, `no finding about the unit: ${ok.out.trim() || '(none)'}`);
  const bad = analyze(['verify'], '/nonexistent/ndp-responder run --interface eth0');
  t.not(bad.code, 0, 'verify rejects a unit whose program is missing (the check can fail)');
  t.match(bad.out, /not executable|No such file/);
});

t.test('systemd-analyze security rates the unit OK or better', async (t) => {
  const r = analyze(['security', '--offline=true'], `${process.execPath} ${CLI} run --interface eth0 --docker`);
  const m = /Overall exposure level for \S+: ([\d.]+) (\S+)/.exec(r.out);
  t.ok(m, `an exposure level is printed: ${r.out.split('\n').at(-2) ?? ''}`);
  t.ok(Number(m?.[1]) <= 3.0, `exposure ${m?.[1]} ${m?.[2]} <= 3.0`);
});
