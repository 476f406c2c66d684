/** `ndp-responder run`: the live daemon, one process for every uplink. */
import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ANSWER_OPTIONS, COMMON_OPTIONS, DOCKER_OPTIONS, RULE_OPTIONS, UsageError, parseFlags, normaliseOptionalDocker } from './flags.js';
import { envValues, type FlagValues } from './config-file.js';
import { buildPlan, dockerSocketPresent, type DefaultUplink, type PlanInputs, type RunPlan } from './run-plan.js';
import { logFormat, makeLogger } from './logger.js';
import { parseDockerUrl } from '../docker/url.js';
import { endpointOptions, processEnv } from '../docker/watcher.js';
import { openRoutes } from '../service/routes.js';
import { UplinkService } from '../service/uplinks.js';
import { startControlServer, type ControlServer } from '../service/control.js';
import { RouteType, TABLE_MAIN } from '../table/route-table.js';
import { RUN_HELP } from './help.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...RULE_OPTIONS,
  ...ANSWER_OPTIONS,
  interface: { type: 'string', short: 'i' },
  backend: { type: 'string' },
  ...DOCKER_OPTIONS,
  'max-groups': { type: 'string' },
  'no-mld': { type: 'boolean' },
  promiscuous: { type: 'boolean' },
  'no-announce': { type: 'boolean' },
  metrics: { type: 'string' },
  nice: { type: 'string' },
  realtime: { type: 'string' },
  'no-route-check': { type: 'boolean' },
  config: { type: 'string', short: 'c' },
  'wait-interface': { type: 'boolean' },
  control: { type: 'string' },
  'no-control': { type: 'boolean' },
} as const;

export async function runCommand(args: string[]): Promise<number> {
  const { values } = parseFlags('run', normaliseOptionalDocker(args), OPTIONS, false);
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  // From here on SIGHUP means reload, never the default (exit): a signal before the daemon is
  // up is remembered and served once it is.
  let hupEarly = false;
  const onHup = () => {
    hupEarly = true;
  };
  process.on('SIGHUP', onHup);

  const flags = values as FlagValues;
  const env = envValues(process.env);
  const needDefault = flags.interface === undefined && env.interface === undefined;
  const dflt: DefaultUplink = needDefault ? await defaultRouteUplink() : { reason: 'not needed' };
  const inputs: PlanInputs = { flags, env, dockerSocket: () => dockerSocketPresent(), defaultUplink: () => dflt };
  let plan = buildPlan(inputs);
  // The Docker endpoint (URL form, TLS variables and files) is checked before anything opens.
  if (plan.docker !== undefined) {
    try {
      endpointOptions(parseDockerUrl(plan.docker.url, processEnv()));
    } catch (e) {
      throw new UsageError(`--docker: ${(e as Error).message}`);
    }
  }
  const logger = makeLogger(plan.logLevel, undefined, logFormat(values['log-format']));
  logger.info(
    {
      uplinks: plan.uplinks.map((u) => ({ interface: u.ifname, rules: u.rules.length, waitInterface: u.waitInterface || undefined })),
      docker: plan.docker !== undefined,
      metrics: plan.metrics,
      control: plan.control,
      why: plan.why,
    },
    'configuration',
  );
  for (const a of plan.addressFiles) logger.info({ ...a }, 'address file loaded');
  const service = new UplinkService({
    uplinks: plan.uplinks,
    docker: plan.docker,
    metrics: plan.metrics,
    nice: plan.nice,
    realtime: plan.realtime,
    logger,
    labelMetrics: plan.configPath !== undefined || plan.uplinks.length > 1,
  });
  await service.start();

  let reloading: Promise<unknown> | undefined;
  const doReload = async (): Promise<unknown> => {
    logger.info({ config: plan.configPath }, 'reloading');
    try {
      const next = buildPlan(inputs);
      const restartOnly = restartNeeded(plan, next);
      const r = await service.apply(next.uplinks);
      plan = {
        ...next,
        docker: plan.docker,
        metrics: plan.metrics,
        control: plan.control,
        nice: plan.nice,
        realtime: plan.realtime,
        logLevel: plan.logLevel,
      };
      service.reloads.ok++;
      service.reloads.last = new Date().toISOString();
      if (restartOnly.length > 0)
        logger.warn({ settings: restartOnly }, `changed settings take effect only on restart: ${restartOnly.join(', ')}`);
      logger.info({ ...r, rules: Object.fromEntries(next.uplinks.map((u) => [u.ifname, u.rules.length])) }, 'reloaded');
      return r;
    } catch (e) {
      service.reloads.failed++;
      const reason = (e as Error).message;
      logger.error({ err: reason, reason: 'reload-failed' }, `reload failed: ${reason}; the old rules stay in force`);
      throw new Error(`reload failed: ${reason}`, { cause: e });
    }
  };
  const reload = (): Promise<unknown> => {
    // One reload at a time; a reload asked for meanwhile runs after it.
    const run = (reloading ?? Promise.resolve()).then(doReload);
    const settled: Promise<unknown> = run.catch(() => undefined);
    reloading = settled;
    void settled.then(() => {
      if (reloading === settled) reloading = undefined;
    });
    return run;
  };
  const reloadQuiet = () => void reload().catch(() => undefined);
  process.off('SIGHUP', onHup);
  process.on('SIGHUP', reloadQuiet);
  if (hupEarly) reloadQuiet();

  let control: ControlServer | undefined;
  if (plan.control !== undefined) {
    try {
      control = await startControlServer(
        plan.control,
        { status: () => ({ ...service.status(), config: plan.configPath }), explain: (a) => service.explain(a), reload: () => reload() },
        logger.child({ component: 'control' }),
      );
    } catch (e) {
      logger.warn(
        { err: (e as Error).message, path: plan.control, reason: 'control-unavailable' },
        'control socket not available; status and explain cannot ask this daemon',
      );
    }
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      (async () => {
        await control?.close();
        await service.stop();
      })().then(
        () => {
          process.off('SIGHUP', reloadQuiet);
          resolve(0);
        },
        (e) => {
          logger.error({ err: e }, 'clean-up failed');
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** Process-wide settings a reload cannot change in place. */
function restartNeeded(a: RunPlan, b: RunPlan): string[] {
  const out: string[] = [];
  if (JSON.stringify(a.docker) !== JSON.stringify(b.docker)) out.push('docker');
  if (a.metrics !== b.metrics) out.push('metrics');
  if (a.control !== b.control) out.push('control');
  if (a.nice !== b.nice) out.push('nice');
  if (a.realtime !== b.realtime) out.push('realtime');
  if (a.logLevel !== b.logLevel) out.push('log-level');
  return out;
}

/** Zero configuration: the interface of the main table's default IPv6 route (lowest metric). */
async function defaultRouteUplink(log?: Logger): Promise<DefaultUplink> {
  let best: { metric: number; ifindex: number } | undefined;
  try {
    const routes = await openRoutes(log ?? { warn: () => undefined });
    try {
      for (const r of routes.table.routes()) {
        if (r.table !== TABLE_MAIN || r.length !== 0 || r.type !== RouteType.UNICAST) continue;
        const oif = r.oifs.find((i) => i !== 0);
        if (oif !== undefined && (best === undefined || r.metric < best.metric)) best = { metric: r.metric, ifindex: oif };
      }
    } finally {
      routes.close();
    }
  } catch (e) {
    return { reason: `the routing table cannot be read (${(e as Error).message})` };
  }
  if (best === undefined) return { reason: 'there is no default IPv6 route' };
  const name = ifnameOf(best.ifindex);
  if (name === undefined) return { reason: `the default IPv6 route's interface (index ${best.ifindex}) has no name here` };
  return { ifname: name, reason: `no --interface given: ${name} carries the default IPv6 route (metric ${best.metric})` };
}

function ifnameOf(ifindex: number): string | undefined {
  try {
    for (const n of readdirSync('/sys/class/net')) {
      try {
        if (Number(readFileSync(`/sys/class/net/${n}/ifindex`, 'utf8').trim()) === ifindex) return n;
      } catch {
        /* gone meanwhile */
      }
    }
  } catch {
    /* no sysfs */
  }
  return undefined;
}
