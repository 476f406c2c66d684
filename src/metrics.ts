/**
 * The HTTP surface and the metric catalogue live in src/service/ (http-server.ts, metrics.ts);
 * this module keeps `parseListen` importable from its old path.
 */
export { parseListen } from './service/http-server.js';
