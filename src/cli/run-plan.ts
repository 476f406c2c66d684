/**
 * What `run` serves, from three sources: flags, then `NDP_RESPONDER_*` environment variables,
 * then the configuration file (flags > environment > file). The result is a {@link RunPlan}:
 * process-wide settings and one {@link UplinkSpec} per uplink. Reload builds a new plan from
 * the same flags and environment and the re-read file.
 */
import { statSync } from 'node:fs';
import type { DockerOptions } from '../service/daemon.js';
import type { UplinkUnitSpec } from '../service/uplinks.js';
import { CONFIG_KEYS, RULE_KEYS, loadConfigFile, type ConfigFile, type FlagValues } from './config-file.js';
import { type AddressFileStats, UsageError, answerSettings, dockerSettings, intFlag, logLevel, staticRules } from './flags.js';

/** The default control socket. */
export const DEFAULT_CONTROL = '/run/ndp-responder/control.sock';

/** One uplink as run serves it: what the service layer starts for it. */
export type UplinkSpec = UplinkUnitSpec;

/** Everything run needs. */
export interface RunPlan {
  readonly uplinks: UplinkSpec[];
  readonly docker: DockerOptions | undefined;
  readonly metrics: string | undefined;
  readonly logLevel: string;
  readonly nice: number;
  /** `--realtime`: SCHED_FIFO priority of the answering thread, 0 for none. */
  readonly realtime: number;
  /** Control socket path; undefined with --no-control. */
  readonly control: string | undefined;
  readonly configPath: string | undefined;
  /** Where the uplinks came from and why, for the first log line. */
  readonly why: Record<string, string>;
  /** One entry per address file read (count, time), for a log line each. */
  readonly addressFiles: AddressFileStats[];
}

/** How zero configuration found its uplink (the default route's interface), or why it could not. */
export interface DefaultUplink {
  readonly ifname?: string;
  readonly reason: string;
}

/** The inputs that stay the same across reloads. */
export interface PlanInputs {
  /** Flag values (parseArgs), the run command's own. */
  readonly flags: FlagValues;
  /** From {@link envValues}. */
  readonly env: FlagValues;
  /** Is Docker's socket there (zero configuration turns Docker on then)? */
  readonly dockerSocket: () => { present: boolean; where: string };
  /** The default route's interface (zero configuration). */
  readonly defaultUplink: () => DefaultUplink;
}

const defined = (v: FlagValues): FlagValues => Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined));

/**
 * Build the plan. Reads the config file (`--config` or `NDP_RESPONDER_CONFIG`) and the address
 * files afresh.
 * @throws UsageError for any bad value, naming file and line where there is one.
 */
export function buildPlan(inp: PlanInputs): RunPlan {
  const flags = defined(inp.flags);
  const env = defined(inp.env);
  const configPath = (flags.config ?? env.config) as string | undefined;
  const file: ConfigFile | undefined = configPath !== undefined ? loadConfigFile(configPath) : undefined;
  const why: Record<string, string> = {};
  if (configPath !== undefined) why.config = configPath;

  // Process-wide and default values: file < environment < flags.
  const over: FlagValues = { ...env, ...flags };
  const top: FlagValues = { ...(file?.top ?? {}), ...over };
  const ruleOver = RULE_KEYS.filter((k) => over[k] !== undefined);

  let blocks: FlagValues[];
  const ifOver = over.interface as string | undefined;
  if (ifOver !== undefined) {
    // An interface from a flag or the environment names the one uplink; the file's list is not used.
    blocks = [top];
    why.uplinks = flags.interface !== undefined ? '--interface' : 'NDP_RESPONDER_INTERFACE';
  } else if (file?.uplinks !== undefined) {
    if (ruleOver.length > 0) {
      throw new UsageError(
        `--${ruleOver[0]}: the config file lists uplinks; name the uplink with --interface, or put the rule in the file`,
      );
    }
    const defaults = Object.fromEntries(Object.entries(file.top).filter(([k]) => CONFIG_KEYS[k]?.where !== 'global'));
    const overDefaults = Object.fromEntries(Object.entries(over).filter(([k]) => CONFIG_KEYS[k]?.where === 'both'));
    blocks = file.uplinks.map((u) => ({ ...defaults, ...u.values, ...overDefaults }));
    why.uplinks = `${configPath} (uplinks:)`;
  } else if (top.interface !== undefined) {
    blocks = [top];
    why.uplinks = `${configPath} (interface:)`;
  } else {
    const d = inp.defaultUplink();
    if (d.ifname === undefined) throw new UsageError(`run: no --interface given and ${d.reason}; name the uplink with --interface IF`);
    blocks = [{ ...top, interface: d.ifname }];
    why.uplinks = d.reason;
  }

  // Docker: given, or (zero configuration: nothing says which addresses are ours) on when its socket is there.
  let dockerValue = top.docker as string | undefined;
  const anyRules = blocks.some((b) => RULE_KEYS.some((k) => b[k] !== undefined));
  if (dockerValue === undefined && !anyRules) {
    const s = inp.dockerSocket();
    if (s.present) {
      dockerValue = '';
      why.docker = `no rules given and Docker's socket ${s.where} exists`;
    } else {
      why.docker = `off: no rules given and Docker's socket ${s.where} does not exist`;
    }
  } else {
    why.docker = dockerValue === undefined ? 'off' : 'given';
  }
  const docker = dockerSettings({
    docker: dockerValue,
    'docker-network': top['docker-network'] as string[] | undefined,
    'docker-label-opt-in': top['docker-label-opt-in'] as boolean | undefined,
  });

  const files: AddressFileStats[] = [];
  const uplinks = blocks.map((b) => uplinkSpec(b, files));
  if (docker === undefined) {
    const empty = uplinks.find((u) => u.rules.length === 0);
    if (empty !== undefined) {
      throw new UsageError(
        `run: nothing to answer on ${empty.ifname}: give --prefix, --address, --address-file or --docker (or start Docker: its socket is looked for at DOCKER_HOST or /var/run/docker.sock)`,
      );
    }
  }
  const nice = top.nice === undefined ? -10 : Number(top.nice);
  if (!Number.isInteger(nice) || nice < -20 || nice > 0)
    throw new UsageError(`--nice: '${String(top.nice)}' is not a whole number from -20 to 0`);
  const realtime = top.realtime === undefined ? 1 : Number(top.realtime);
  if (!/^\d+$/.test(String(top.realtime ?? '1')) || realtime > 99)
    throw new UsageError(`--realtime: '${String(top.realtime)}' is not a whole number from 0 to 99`);
  return {
    uplinks,
    docker,
    metrics: top.metrics as string | undefined,
    logLevel: logLevel(top['log-level'] as string | undefined),
    nice,
    realtime,
    control: top['no-control'] === true ? undefined : ((top.control as string | undefined) ?? DEFAULT_CONTROL),
    configPath,
    why,
    addressFiles: files,
  };
}

function uplinkSpec(v: FlagValues, files?: AddressFileStats[]): UplinkSpec {
  const ifname = v.interface as string;
  const backend = (v.backend as string | undefined) ?? 'afpacket';
  if (backend !== 'afpacket' && backend !== 'pcap') throw new UsageError(`--backend: '${backend}' is not one of afpacket, pcap`);
  return {
    ifname,
    backend,
    rules: staticRules(v as Parameters<typeof staticRules>[0], files),
    settings: answerSettings(v as Parameters<typeof answerSettings>[0]),
    maxGroups: intFlag(v['max-groups'] as string | undefined, '--max-groups', 4096, 0, 1 << 24),
    mld: v['no-mld'] !== true,
    promiscuous: v.promiscuous === true,
    announce: v['no-announce'] !== true,
    routeCheck: v['no-route-check'] !== true,
    waitInterface: v['wait-interface'] === true,
  };
}

/** Is the Docker socket there (DOCKER_HOST when it is a unix socket, else /var/run/docker.sock)? */
export function dockerSocketPresent(env: NodeJS.ProcessEnv = process.env): { present: boolean; where: string } {
  const host = env.DOCKER_HOST;
  if (host !== undefined && host !== '') {
    if (!host.startsWith('unix://')) return { present: true, where: `DOCKER_HOST=${host}` };
    const p = host.slice('unix://'.length);
    return { present: socketExists(p), where: p };
  }
  return { present: socketExists('/var/run/docker.sock'), where: '/var/run/docker.sock' };
}

function socketExists(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
