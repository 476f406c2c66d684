/**
 * The Docker event stream, as pure functions: the server-side filter we subscribe with, a
 * decoder for the stream's newline-delimited JSON, and what each event means for the table.
 */

/**
 * Events we subscribe to, filtered by dockerd itself (RFC-free, Engine API `/events`).
 * - container start: a new container (or a restart) is up; its addresses are final by now.
 * - container die: it stopped (exit, stop, kill, OOM, crash); dockerd sends `die` before it
 *   tears the network down and before `GET /containers/json` stops listing it, so the
 *   watcher drops the container on the event itself.
 * - container destroy: removed; container rename: the name in our rules changes.
 * - network connect / disconnect: an address appears or goes on a running container.
 * pause/unpause are not followed: a paused container keeps its network and its addresses.
 * `destroy` also matches network destroy events, which are ignored.
 */
export const EVENT_FILTERS = {
  type: ['container', 'network'],
  event: ['start', 'die', 'destroy', 'rename', 'connect', 'disconnect'],
} as const;

/** The filter as the `filters` query parameter. */
export function eventFiltersParam(): string {
  return JSON.stringify({ type: [...EVENT_FILTERS.type], event: [...EVENT_FILTERS.event] });
}

/** What an event asks the watcher to do with one container. */
export type EventEffect =
  /** Forget the container now, without asking Docker (it died or was removed). */
  | { readonly kind: 'remove'; readonly containerId: string; readonly action: string }
  /** Re-read the container with inspect (it started, was renamed, or changed networks). */
  | { readonly kind: 'refresh'; readonly containerId: string; readonly action: string }
  | { readonly kind: 'ignore'; readonly action: string };

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Classify one decoded event object. */
export function eventEffect(event: unknown): EventEffect {
  const e = obj(event);
  const type = typeof e?.['Type'] === 'string' ? (e['Type'] as string) : '';
  const action =
    typeof e?.['Action'] === 'string' ? (e['Action'] as string) : typeof e?.['status'] === 'string' ? (e['status'] as string) : '';
  const actor = obj(e?.['Actor']);
  const attrs = obj(actor?.['Attributes']);
  if (type === 'container') {
    const id = typeof actor?.['ID'] === 'string' ? (actor['ID'] as string) : typeof e?.['id'] === 'string' ? (e['id'] as string) : '';
    if (id === '') return { kind: 'ignore', action };
    if (action === 'die' || action === 'destroy') return { kind: 'remove', containerId: id, action };
    if (action === 'start' || action === 'rename') return { kind: 'refresh', containerId: id, action };
    return { kind: 'ignore', action };
  }
  if (type === 'network' && (action === 'connect' || action === 'disconnect')) {
    const id = typeof attrs?.['container'] === 'string' ? (attrs['container'] as string) : '';
    if (id === '') return { kind: 'ignore', action };
    return { kind: 'refresh', containerId: id, action: `network ${action}` };
  }
  return { kind: 'ignore', action: type === '' ? action : `${type} ${action}` };
}

/**
 * Splits the `/events` byte stream into JSON values. dockerd writes one JSON object per line,
 * but a chunk may hold several or end mid-object. A line that is not JSON is reported to
 * `onBad` and skipped. Lines longer than `maxLine` are dropped (a broken stream must not grow
 * the buffer forever).
 */
export class JsonLineDecoder {
  private buf = '';
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly onBad: (line: string, err: Error) => void = () => {},
    private readonly maxLine = 1 << 20,
  ) {}

  /** Feed a chunk; returns the complete values it finished. */
  push(chunk: Uint8Array | string): unknown[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: unknown[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === '') continue;
      try {
        out.push(JSON.parse(line));
      } catch (err) {
        this.onBad(line, err as Error);
      }
    }
    if (this.buf.length > this.maxLine) {
      this.onBad(this.buf.slice(0, 200), new Error(`line longer than ${this.maxLine} bytes dropped`));
      this.buf = '';
    }
    return out;
  }
}
