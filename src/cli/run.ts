/** `ndp-responder run`: the live daemon. */
import { type AddressFileStats, ANSWER_OPTIONS, COMMON_OPTIONS, DOCKER_OPTIONS, RULE_OPTIONS, UsageError, answerSettings, dockerSettings, intFlag, logLevel, normaliseOptionalDocker, parseFlags, staticRules } from './flags.js';
import { Daemon } from '../service/daemon.js';
import { logFormat, makeLogger } from './logger.js';
import { parseListen } from '../service/http-server.js';
import { parseDockerUrl } from '../docker/url.js';
import { endpointOptions, processEnv } from '../docker/watcher.js';
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
  'no-route-check': { type: 'boolean' },
} as const;

export async function runCommand(args: string[]): Promise<number> {
  const { values } = parseFlags('run', normaliseOptionalDocker(args), OPTIONS, false);
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  const ifname = values.interface;
  if (ifname === undefined || ifname === '') throw new UsageError('run: --interface IF is required');
  const backend = values.backend ?? 'afpacket';
  if (backend !== 'afpacket' && backend !== 'pcap') throw new UsageError(`--backend: '${backend}' is not one of afpacket, pcap`);
  const files: AddressFileStats[] = [];
  const rules = staticRules(values, files);
  const settings = answerSettings(values);
  if (values.metrics !== undefined) {
    try {
      parseListen(values.metrics);
    } catch (e) {
      throw new UsageError(`--metrics: ${(e as Error).message}`);
    }
  }
  const docker = dockerSettings(values);
  if (docker !== undefined) {
    try {
      endpointOptions(parseDockerUrl(docker.url, processEnv()));
    } catch (e) {
      throw new UsageError(`--docker: ${(e as Error).message}`);
    }
  }
  if (docker === undefined && rules.length === 0) {
    throw new UsageError('run: nothing to answer: give --prefix, --address, --address-file or --docker');
  }
  const logger = makeLogger(logLevel(values['log-level']), undefined, logFormat(values['log-format']));
  for (const f of files) logger.info({ ...f }, 'address file loaded');
  const daemon = new Daemon({
    ifname,
    backend,
    rules,
    settings,
    docker,
    maxGroups: intFlag(values['max-groups'], '--max-groups', 4096, 0, 1 << 24),
    mld: values['no-mld'] !== true,
    promiscuous: values.promiscuous === true,
    announce: values['no-announce'] !== true,
    metrics: values.metrics,
    routeCheck: values['no-route-check'] !== true,
    nice: niceFlag(values.nice),
    logger,
  });
  await daemon.start();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      daemon.stop().then(
        () => resolve(0),
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

/** `--nice N`: -20..0, default -10. */
function niceFlag(text: string | undefined): number {
  if (text === undefined) return -10;
  if (!/^-?\d+$/.test(text) || Number(text) < -20 || Number(text) > 0) throw new UsageError(`--nice: '${text}' is not a whole number from -20 to 0`);
  return Number(text);
}

