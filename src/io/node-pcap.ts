/** node_pcap (CommonJS addon) as the file and live pcap back ends both use it. */
import { createRequire } from 'node:module';
import { endianness } from 'node:os';

const require = createRequire(import.meta.url);

/** The module, with the warning hook pcap.js exposes beyond its typings. */
export type PcapModule = typeof import('pcap') & { warningHandler: (text: string) => unknown };

let pcapModule: PcapModule | undefined;

/** Load node_pcap once. */
export function loadPcap(): PcapModule {
  return (pcapModule ??= require('pcap') as PcapModule);
}

const LE = endianness() === 'LE';

/**
 * A 32-bit field of the libpcap record header (struct pcap_pkthdr: ts_sec 0, ts_usec 4,
 * caplen 8, len 12) that node_pcap hands over with each packet, in host byte order.
 */
export function headerU32(header: Buffer, off: number): number {
  return LE ? header.readUInt32LE(off) : header.readUInt32BE(off);
}
