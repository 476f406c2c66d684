/** `ndp-responder explain`: why an address is or isn't answered. */
import { COMMON_OPTIONS, RULE_OPTIONS, UsageError, parseFlags, staticRules } from '../config.js';
import { TargetTable, makeRule } from '../table/target-table.js';
import { formatAddress, parseAddress } from '../table/cidr.js';
import { Action } from '../table/rule.js';
import { readInterfaceFacts } from '../io/interface.js';
import { DockerWatcher } from '../docker/watcher.js';
import { makeLogger } from '../logger.js';
import { normaliseOptionalDocker } from './run.js';
import { EXPLAIN_HELP } from './help.js';
import { explainAddress, formatExplanation, type Explanation } from './explain-address.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...RULE_OPTIONS,
  interface: { type: 'string', short: 'i' },
  docker: { type: 'string' },
  daemon: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function explainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('explain', normaliseOptionalDocker(args), OPTIONS, true);
  if (values.help) {
    process.stdout.write(EXPLAIN_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('explain: give at least one address');
  for (const p of positionals) {
    try {
      parseAddress(p);
    } catch (e) {
      throw new UsageError(`explain: ${(e as Error).message}`);
    }
  }
  let results: Explanation[];
  if (values.daemon !== undefined) {
    results = [];
    for (const p of positionals) {
      const url = new URL('/explain', values.daemon);
      url.searchParams.set('address', p);
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        throw new UsageError(`--daemon ${values.daemon}: ${(e as Error).message}`);
      }
      if (!res.ok) throw new UsageError(`--daemon ${values.daemon}: HTTP ${res.status}`);
      results.push((await res.json()) as Explanation);
    }
  } else {
    const table = new TargetTable();
    table.replaceGroup('static', staticRules(values));
    if (values.interface !== undefined) {
      const f = readInterfaceFacts(values.interface);
      table.replaceGroup(
        'host',
        f.addresses.map((a) => makeRule(formatAddress(a.addr, 0), Action.Exclude, { kind: 'host', ifname: f.ifname })),
      );
    }
    if (values.docker !== undefined) {
      const logger = makeLogger(values['log-level'] ?? 'warn');
      const w = new DockerWatcher({ url: values.docker === '' ? undefined : values.docker, sink: table, logger, once: true });
      await w.start();
      const st = w.status();
      await w.stop();
      if (!st.connected && st.lastSync === null) throw new UsageError(`--docker: cannot reach Docker (see log above)`);
    }
    results = positionals.map((p) => explainAddress(table, p));
  }
  if (values.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else process.stdout.write(results.map(formatExplanation).join('\n') + '\n');
  return 0;
}
