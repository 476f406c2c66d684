/** IPv6 and MAC addresses: bytes (hot path) and text (edges). The bottom layer: imports nothing of ours. */
export * from './bytes.js';
export * from './text.js';
