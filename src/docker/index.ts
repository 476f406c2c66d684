export { DockerWatcher, type DockerSink, type DockerWatcherOptions, type DockerWatcherStatus } from './watcher.js';
export {
  ENABLE_LABEL,
  fromInspect,
  fromListEntry,
  labelAllows,
  networkSelected,
  networkKey,
  ON_LINK_DRIVERS,
  selectRules,
  dockerRule,
  type ContainerInfo,
  type NetworkAddress,
  type SelectOptions,
  type Selection,
  type Skipped,
  type SkipReason,
} from './addresses.js';
export { EVENT_FILTERS, eventEffect, eventFiltersParam, JsonLineDecoder, type EventEffect } from './events.js';
export { DEFAULT_DOCKER_URL, parseDockerUrl, readTlsMaterial, type DockerEndpoint, type DockerEnv, type DockerTls, type TlsMaterial } from './url.js';
