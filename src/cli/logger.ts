/** pino, JSON lines on stdout (one line per event; `ready` marks the moment answers start). */
import { pino, type Logger } from 'pino';

export function makeLogger(level: string, name = 'ndp-responder'): Logger {
  return pino({ name, level, base: { name }, timestamp: pino.stdTimeFunctions.isoTime });
}
