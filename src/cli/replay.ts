/** `ndp-responder replay`: a pcap file through the engine, the answers to a pcap file. */
import { linkLocalFromMac } from '../addr/index.js';
import { ANSWER_OPTIONS, COMMON_OPTIONS, RULE_OPTIONS, UsageError, addressFlag, answerSettings, macFlag, parseFlags, staticRules } from './flags.js';
import { FileBackend } from '../io/file-backend.js';
import { PcapFileWriter } from '../io/pcap-writer.js';
import { Responder } from '../engine/responder.js';
import type { Decision } from '../engine/decide.js';
import type { HostFacts } from '../engine/types.js';
import { ANSWER_KIND_NAMES, FIRST_TARGET_REASON, dropReasonName } from '../engine/verdict.js';
import type { NsView } from '../ndp/ns-view.js';
import { Scope } from '../service/scope.js';
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
  if (output === undefined) throw new UsageError('replay: -o OUT.pcap is required');
  const mac = macFlag(values.mac);
  const host: HostFacts = {
    ifname: 'replay',
    mac,
    linkLocal: values['link-local'] !== undefined ? addressFlag(values['link-local'], '--link-local') : linkLocalFromMac(mac),
  };
  const settings = answerSettings(values);
  // The same scope builder as run and explain; there is no live interface or Docker here.
  const scope = new Scope();
  scope.setStatic(staticRules(values));

  let backend: FileBackend;
  let writer: PcapFileWriter;
  try {
    writer = new PcapFileWriter(output);
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
  backend.start((batch) => responder.handleBatch(batch));
  const result = await backend.done;
  backend.close();
  writer.close();

  const summary = { input, output, ...responder.counters.snapshot(), written: writer.frames, completed: result.completed };
  if (values.explain) process.stdout.write(['#index\ttarget\tdecision\treason\trule', ...lines].join('\n') + '\n');
  if (values.json) {
    process.stdout.write(JSON.stringify(summary) + '\n');
  } else {
    const drops = Object.entries(summary.drops).map(([k, v]) => `  dropped ${k}: ${v}`);
    process.stdout.write(
      [`frames read: ${summary.frames}`, `answered: ${summary.answered}`, ...Object.entries(summary.answeredByKind).map(([k, v]) => `  ${k}: ${v}`), `dropped: ${summary.dropped}`, ...drops, `written to ${output}: ${writer.frames}`].join('\n') + '\n',
    );
  }
  return result.completed ? 0 : 1;
}
