/** `ndp-responder replay`: a pcap file through the engine, the answers to a pcap file. */
import { linkLocalFromMac } from '../addr/index.js';
import {
  ANSWER_OPTIONS,
  COMMON_OPTIONS,
  RULE_OPTIONS,
  UsageError,
  addressFlag,
  answerSettings,
  macFlag,
  parseFlags,
  staticRules,
} from './flags.js';
import { FileBackend } from '../io/file-backend.js';
import { PcapFileWriter } from '../io/pcap-writer.js';
import { Responder } from '../engine/responder.js';
import type { Decision } from '../engine/decide.js';
import type { HostFacts } from '../engine/types.js';
import { ANSWER_KIND_NAMES, FIRST_TARGET_REASON, dropReasonName } from '../engine/verdict.js';
import type { NsView } from '../ndp/ns-view.js';
import { readFileSync } from 'node:fs';
import { routeTableFromIpJson } from '../table/ip-routes.js';
import { Scope, routeOracle } from '../service/scope.js';
import { formatAddress } from '../addr/index.js';
import { describeSource } from '../service/explain.js';
import { REPLAY_HELP } from './help.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...RULE_OPTIONS,
  ...ANSWER_OPTIONS,
  output: { type: 'string', short: 'o' },
  mac: { type: 'string' },
  'link-local': { type: 'string' },
  explain: { type: 'boolean' },
  routes: { type: 'string' },
  uplink: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** One `--explain` line: index, target, decision, reason, matching rule. */
export function explainLine(index: number, view: NsView, d: Decision): string {
  const target = d.kind !== 0 || d.reason >= FIRST_TARGET_REASON ? formatAddress(view.frame, view.targetOff) : '-';
  const decision = d.kind !== 0 ? ANSWER_KIND_NAMES[d.kind]! : 'drop';
  const reason = d.kind !== 0 ? '-' : dropReasonName(d.reason);
  const rule = d.rule !== undefined ? `${d.rule.text} (${describeSource(d.rule.source)})` : '-';
  return `${index}\t${target}\t${decision}\t${reason}\t${rule}`;
}

export async function replayCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('replay', args, OPTIONS, true);
  if (values.help) {
    process.stdout.write(REPLAY_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('replay: give exactly one input pcap file');
  const input = positionals[0]!;
  const output = values.output;
  if (output === undefined) throw new UsageError('replay: -o OUT.pcap is required (-o - for stdout)');
  const toStdout = output === '-';
  const mac = macFlag(values.mac);
  const host: HostFacts = {
    ifname: 'replay',
    mac,
    linkLocal: values['link-local'] !== undefined ? addressFlag(values['link-local'], '--link-local') : linkLocalFromMac(mac),
  };
  const settings = answerSettings(values);
  // The same scope builder as run and explain; there is no live interface or Docker here.
  const scope = new Scope();
  const rules = staticRules(values);
  scope.setStatic(rules);
  // No host to ask: the route check runs only on routes given (`ip -j -6 route show table all`).
  if (values.routes !== undefined) {
    if (values.uplink === undefined) throw new UsageError('--routes needs --uplink IFNAME (the interface the capture was taken on)');
    let text: string;
    try {
      text = readFileSync(values.routes, 'utf8');
    } catch (e) {
      throw new UsageError(`--routes ${values.routes}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let routes: ReturnType<typeof routeTableFromIpJson>;
    try {
      routes = routeTableFromIpJson(text);
    } catch (e) {
      throw new UsageError(`--routes ${values.routes}: ${(e as Error).message}`);
    }
    const uplink = routes.ifindex.get(values.uplink) ?? -1;
    scope.setRoutes(routeOracle(routes.table, () => uplink));
  } else if (values.uplink !== undefined) {
    throw new UsageError('--uplink goes with --routes');
  }

  let backend: FileBackend;
  let writer: PcapFileWriter;
  try {
    writer = new PcapFileWriter(toStdout ? 1 : output);
  } catch (e) {
    throw new UsageError(`-o ${output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    backend = new FileBackend({ path: input, sink: writer });
  } catch (e) {
    writer.close();
    throw new UsageError(`${input}: ${(e as Error).message}`);
  }
  const lines: string[] = [];
  const responder = new Responder({
    sink: backend,
    table: scope,
    host,
    settings,
    onDecision: values.explain ? (i, view, d) => lines.push(explainLine(i, view, d)) : undefined,
  });
  // Once the files are open (a bad argument is still the one line): no rules is allowed, but said.
  if (rules.length === 0)
    process.stderr.write('replay: no rules given: nothing will be answered (give --prefix/--address/--address-file)\n');
  backend.start((batch) => responder.handleBatch(batch));
  const result = await backend.done;
  backend.close();
  writer.close();

  const summary = { input, output, ...responder.counters.snapshot(), written: writer.frames, completed: result.completed };
  // With the pcap on stdout, the text (explain lines, summary) goes to stderr.
  const say = (text: string) => (toStdout ? process.stderr : process.stdout).write(text);
  if (values.explain) say(['#index\ttarget\tdecision\treason\trule', ...lines].join('\n') + '\n');
  if (values.json) {
    say(JSON.stringify(summary) + '\n');
  } else {
    const drops = Object.entries(summary.drops).map(([k, v]) => `  dropped ${k}: ${v}`);
    say(
      [
        `frames read: ${summary.frames}`,
        `answered: ${summary.answered}`,
        ...Object.entries(summary.answeredByKind).map(([k, v]) => `  ${k}: ${v}`),
        `dropped: ${summary.dropped}`,
        ...drops,
        `written to ${toStdout ? 'stdout' : output}: ${writer.frames}`,
      ].join('\n') + '\n',
    );
  }
  return result.completed ? 0 : 1;
}
