/**
 * The daemon's log: pino, one JSON line per event on stdout (`ready` marks the moment answers
 * start) when stdout is a pipe or a file, readable lines (pino-pretty) when it is a terminal.
 * `--log-format json|pretty|auto` chooses; auto is the default.
 */
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
import { UsageError } from './flags.js';

export type LogFormat = 'json' | 'pretty' | 'auto';

/** `--log-format`: json, pretty or auto (default). @throws UsageError for anything else. */
export function logFormat(text: string | undefined): LogFormat {
  const f = text ?? 'auto';
  if (f !== 'json' && f !== 'pretty' && f !== 'auto') throw new UsageError(`--log-format: '${f}' is not one of json, pretty, auto`);
  return f;
}

/** Whether `format` means readable lines for this stdout (auto: when it is a terminal). */
export function prettyFor(format: LogFormat, isTty: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && isTty);
}

/** A logger writing to stdout, JSON or readable lines per {@link prettyFor}. */
export function makeLogger(level: string, name = 'ndp-responder', format: LogFormat = 'auto'): Logger {
  const options = { name, level, base: { name }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!prettyFor(format, process.stdout.isTTY === true)) return pino(options);
  // Synchronous, in this thread: a line is out before the next statement (and before exit).
  // Loaded only here: JSON logging (the service case) never needs it.
  const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  const stream = pinoPretty({
    sync: true,
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'name',
  });
  return pino(options, stream);
}
