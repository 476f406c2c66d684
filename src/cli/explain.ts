/** `ndp-responder explain`: why an address is or isn't answered. */
import { parseAddress, parseMac } from '../addr/index.js';
import { DEFAULT_ANSWER_SETTINGS, type HostFacts } from '../engine/types.js';
import { watchDocker } from '../service/daemon.js';
import { explainAddress, formatExplanation, type Explanation } from '../service/explain.js';
import { readUplinkFacts } from '../service/link.js';
import { openRoutes } from '../service/routes.js';
import { Scope, routeOracle } from '../service/scope.js';
import { toSenderFacts } from '../io/interface.js';
import { Action } from '../table/rule.js';
import {
  ANSWER_OPTIONS,
  COMMON_OPTIONS,
  DOCKER_OPTIONS,
  RULE_OPTIONS,
  UsageError,
  answerSettings,
  dockerSettings,
  normaliseOptionalDocker,
  parseFlags,
  staticRules,
} from './flags.js';
import { EXPLAIN_HELP } from './help.js';
import { logFormat, makeLogger } from './logger.js';
import { existsSync } from 'node:fs';
import { DEFAULT_CONTROL } from './run-plan.js';
import { askDaemon } from './status.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...RULE_OPTIONS,
  ...ANSWER_OPTIONS,
  ...DOCKER_OPTIONS,
  interface: { type: 'string', short: 'i' },
  daemon: { type: 'string' },
  control: { type: 'string' },
  'no-route-check': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** Host facts when no interface is named: any unicast MAC will do, no verdict depends on it. */
const OFFLINE_HOST: HostFacts = { ifname: '-', mac: parseMac('02:00:00:00:00:00'), linkLocal: parseAddress('fe80::ff:fe00:0') };

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
  let results: Explanation[] = [];
  let asked = false;
  const noRules = [values.prefix, values.address, values['address-file'], values.exclude, values.interface, values.docker].every(
    (v) => v === undefined,
  );
  if (values.daemon === undefined && noRules) {
    // Nothing says which addresses are ours: ask the running daemon, which knows.
    const path = values.control ?? process.env.NDP_RESPONDER_CONTROL ?? DEFAULT_CONTROL;
    if (existsSync(path)) {
      for (const p of positionals) results.push((await askDaemon(path, { cmd: 'explain', address: p })) as Explanation);
      asked = true;
    } else {
      process.stderr.write(
        `note: no daemon's control socket at ${path}; explaining offline with no rules (give --control PATH, or rules, --interface, --docker)\n`,
      );
    }
  }
  if (asked) {
    /* answered by the daemon */
  } else if (values.daemon !== undefined) {
    results = [];
    for (const p of positionals) {
      let url: URL;
      try {
        url = new URL('/explain', values.daemon);
      } catch {
        throw new UsageError(`--daemon: '${values.daemon}' is not a URL (e.g. http://[::1]:9464)`);
      }
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
    // The same scope the daemon builds: static rules, the interface's addresses, Docker.
    const logger = makeLogger(values['log-level'] ?? 'warn', undefined, logFormat(values['log-format']));
    const scope = new Scope(logger);
    scope.setStatic(staticRules(values));
    let host = OFFLINE_HOST;
    if (values.interface !== undefined) {
      const facts = readUplinkFacts(values.interface)!;
      scope.setUplink(facts);
      host = toSenderFacts(facts);
      if (values['no-route-check'] !== true) {
        const routes = await openRoutes(logger);
        routes.close();
        scope.setRoutes(routeOracle(routes.table, () => facts.ifindex));
      }
    }
    const docker = dockerSettings(values);
    if (docker !== undefined && values.interface === undefined && !scope.staticRuleSet().some((r) => r.action === Action.Answer)) {
      process.stderr.write(
        "explain: no --interface and no answer rule: containers are admitted only inside the uplink's on-link prefixes, so none is; give --interface IF as run has\n",
      );
    }
    if (docker !== undefined) {
      const w = watchDocker(scope, docker, logger, true);
      await w.start();
      const st = w.status();
      await w.stop();
      if (!st.connected && st.lastSync === null) throw new UsageError(`--docker: cannot reach Docker (see log above)`);
    }
    const ctx = {
      table: scope,
      scope,
      host,
      settings:
        values['source-policy'] !== undefined || values.router || values['no-override'] ? answerSettings(values) : DEFAULT_ANSWER_SETTINGS,
    };
    results = positionals.map((p) => explainAddress(ctx, p));
  }
  if (values.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else process.stdout.write(results.map(formatExplanation).join('\n') + '\n');
  return 0;
}
