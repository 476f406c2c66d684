/** The NDP codec: constants, drop reasons, addresses, checksum, NS parser, NA builder, MLD. */
export * from './constants.js';
export * from './drop-reason.js';
export * from './ns-view.js';
export * from './checksum.js';
export * from './address.js';
export * from './parse.js';
export * from './build.js';
export * from './mld.js';
export * from './ethernet.js';
