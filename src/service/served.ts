/** One sentence for the start-up log line: what an uplink serves. */
import { Action, type Rule } from '../table/rule.js';

/** How many prefixes are listed by text before the rest are only counted. */
const LISTED = 4;

/**
 * What the daemon answers for on one uplink, in words: the answered prefixes (the first few by
 * text), the count of exact addresses, the excluded ranges, and whether containers are followed.
 * E.g. `prefixes 2001:db8:1::/64; 1000 addresses; excluded 2001:db8:1::/120; Docker containers
 * (networks: all)`.
 */
export function describeServed(rules: readonly Rule[], docker: { networks: readonly string[]; labelOptIn: boolean } | undefined): string {
  const prefixes: string[] = [];
  const excluded: string[] = [];
  let addresses = 0;
  for (const r of rules) {
    if (r.action === Action.Exclude) excluded.push(r.text);
    else if (r.length === 128) addresses++;
    else prefixes.push(r.text);
  }
  const list = (xs: string[]) => (xs.length <= LISTED ? xs.join(', ') : `${xs.slice(0, LISTED).join(', ')} and ${xs.length - LISTED} more`);
  const parts: string[] = [];
  if (prefixes.length > 0) parts.push(`${prefixes.length === 1 ? 'prefix' : 'prefixes'} ${list(prefixes)}`);
  if (addresses > 0) parts.push(`${addresses} ${addresses === 1 ? 'address' : 'addresses'}`);
  if (excluded.length > 0) parts.push(`excluded ${list(excluded)}`);
  if (docker !== undefined) {
    const nets = docker.networks.length === 0 ? 'all' : docker.networks.join(', ');
    parts.push(`Docker containers (networks: ${nets}${docker.labelOptIn ? ', labelled ndp-responder.enable=true only' : ''})`);
  }
  return parts.length === 0 ? 'nothing' : parts.join('; ');
}
