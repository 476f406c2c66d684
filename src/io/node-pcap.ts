/** node_pcap (CommonJS addon) as the file and live pcap back ends both use it. */
import { createRequire } from 'node:module';
import { endianness } from 'node:os';

const require = createRequire(import.meta.url);

/** The module, with the warning hook pcap.js exposes beyond its typings. */
export type PcapModule = typeof import('pcap') & { warningHandler: (text: string) => unknown };

let pcapModule: PcapModule | undefined;

/**
 * Load node_pcap once. It is an optional dependency (the default back end does not need it);
 * when it is missing, unbuilt or libpcap is absent, the error says so in one line.
 * @throws Error with code ERR_PCAP_MISSING.
 */
export function loadPcap(): PcapModule {
  if (pcapModule) return pcapModule;
  try {
    pcapModule = require('pcap') as PcapModule;
  } catch (cause) {
    throw Object.assign(new Error(pcapMissingMessage(cause)), { code: 'ERR_PCAP_MISSING', cause });
  }
  return pcapModule;
}

/** What is missing, from require('pcap')'s error: the package, its addon, or libpcap. */
export function pcapMissingMessage(cause: unknown): string {
  const msg = cause instanceof Error ? cause.message : String(cause);
  const first = msg.split('\n')[0] ?? msg;
  if (/libpcap[^ ]*\.so/.test(first)) {
    return `the pcap back end needs libpcap (apt-get install libpcap0.8): ${first}`;
  }
  if (/Cannot find module 'pcap'/.test(first)) {
    return "the pcap back end and replay need the optional npm package 'pcap' (node_pcap), which is not installed: apt-get install libpcap-dev, then npm install pcap";
  }
  if (/pcap_binding/.test(first)) {
    return "the npm package 'pcap' is installed but its addon is not built (install scripts not approved?): apt-get install libpcap-dev, then npm rebuild pcap";
  }
  return `cannot load the npm package 'pcap' (node_pcap): ${first}`;
}

const LE = endianness() === 'LE';

/**
 * A 32-bit field of the libpcap record header (struct pcap_pkthdr: ts_sec 0, ts_usec 4,
 * caplen 8, len 12) that node_pcap hands over with each packet, in host byte order.
 */
export function headerU32(header: Buffer, off: number): number {
  return LE ? header.readUInt32LE(off) : header.readUInt32BE(off);
}
