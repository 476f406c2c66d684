#!/usr/bin/env node
/**
 * Build the AF_PACKET addon (binding.gyp, native/) and put it at build/Release/ndp_native.node
 * with one rename(2).
 *
 *   node scripts/build-addon.mjs [node-gyp options, e.g. --silent]
 *
 * node-gyp builds in a staging folder beside the package (so `require('node-addon-api')` in
 * binding.gyp resolves from the package's node_modules); the finished file then replaces the old
 * one atomically. A daemon that has the old addon mapped keeps its inode: writing into a mapped
 * shared object in place (what a build in build/ may do) crashes that process with SIGBUS.
 * On failure the installed addon is left as it was.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const target = join(root, 'build', 'Release', 'ndp_native.node');

/** How to run node-gyp: npm's own (set for scripts), this package's, or the one on PATH. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) {
    return [process.execPath, process.env.npm_config_node_gyp];
  }
  try {
    return [process.execPath, createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    return ['node-gyp'];
  }
}

const stage = mkdtempSync(join(root, '.addon-build-'));
let status = 1;
try {
  cpSync(join(root, 'binding.gyp'), join(stage, 'binding.gyp'));
  cpSync(join(root, 'native'), join(stage, 'native'), { recursive: true });
  const [cmd, ...pre] = nodeGyp();
  const r = spawnSync(cmd, [...pre, 'rebuild', ...process.argv.slice(2)], { cwd: stage, stdio: 'inherit' });
  if (r.error) {
    console.error(`build-addon: cannot run node-gyp: ${r.error.message}`);
  } else if (r.status !== 0) {
    console.error(`build-addon: node-gyp failed (exit ${r.status ?? r.signal}); ${target} left as it was`);
  } else {
    mkdirSync(dirname(target), { recursive: true });
    renameSync(join(stage, 'build', 'Release', 'ndp_native.node'), target);
    status = 0;
  }
} finally {
  rmSync(stage, { recursive: true, force: true });
}
process.exit(status);
