#!/usr/bin/env node
/** The command line: dispatch, and the one place errors become messages and exit codes. */
import { readFileSync } from 'node:fs';
import { UsageError } from './cli/flags.js';
import { DaemonError } from './service/errors.js';
import { MAIN_HELP } from './cli/help.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run':
      return (await import('./cli/run.js')).runCommand(rest);
    case 'replay':
      return (await import('./cli/replay.js')).replayCommand(rest);
    case 'explain':
      return (await import('./cli/explain.js')).explainCommand(rest);
    case 'status':
      return (await import('./cli/status.js')).statusCommand(rest);
    case 'doctor':
      return (await import('./cli/doctor.js')).doctorCommand(rest);
    case 'demo':
      return (await import('./cli/demo.js')).demoCommand(rest);
    case '--version':
    case '-V':
      process.stdout.write(version() + '\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(MAIN_HELP);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${cmd}' (see 'ndp-responder --help')`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`ndp-responder: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof DaemonError) {
      process.stderr.write(`ndp-responder: ${err.message}\n`);
      process.exit(1);
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`ndp-responder: ${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}\n`);
    if (process.env.NDP_RESPONDER_DEBUG) process.stderr.write(`${e?.stack}\n`);
    process.exit(1);
  },
);
