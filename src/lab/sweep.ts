/**
 * The last-resort cleanup of the lab: every child process, network namespace and other resource
 * (a Docker lab) that a lab helper made is registered here, and a synchronous sweep ends or
 * removes whatever is still registered when the process exits or is killed by SIGINT, SIGTERM
 * or SIGHUP. Normal cleanup (a test's teardown, a benchmark's `finally`) unregisters first, so
 * the sweep only meets what a crash or a signal left behind.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { constants } from 'node:os';

const children = new Set<ChildProcess>();
const namespaces = new Set<string>();
const hooks = new Set<() => void>();
let installed = false;

/** Delete a network namespace by name, synchronously; never throws (it may be gone already). */
export function deleteNamespaceSync(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 5000 });
  } catch {
    /* already gone */
  }
}

/**
 * SIGKILL every process inside a namespace (`ip netns pids`), then delete it. Only for
 * namespaces this process made: whatever runs inside them is ours by construction.
 */
export function killAndDeleteNamespaceSync(name: string): void {
  try {
    const out = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    for (const p of out.split(/\s+/)) {
      if (!/^\d+$/.test(p)) continue;
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  } catch {
    /* namespace already gone */
  }
  deleteNamespaceSync(name);
}

/** Run every registered cleanup now: kill children, run hooks (newest first), delete namespaces. */
export function sweepSync(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
  for (const h of [...hooks].reverse()) {
    hooks.delete(h);
    try {
      h();
    } catch {
      /* best effort at exit */
    }
  }
  for (const n of namespaces) killAndDeleteNamespaceSync(n);
  namespaces.clear();
}

/**
 * Install the exit and signal handlers once. On a signal the sweep runs and the process exits
 * with 128 + the signal's number, as the default action would have.
 */
export function installSweep(): void {
  if (installed) return;
  installed = true;
  process.on('exit', sweepSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      sweepSync();
      process.exit(128 + (constants.signals[sig] ?? 1));
    });
  }
}

/** Track a child: SIGKILLed by the sweep unless it exited first. */
export function trackChild<C extends ChildProcess>(child: C): C {
  installSweep();
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

/** Track a namespace name: deleted by the sweep unless {@link untrackNamespace} came first. */
export function trackNamespace(name: string): void {
  installSweep();
  namespaces.add(name);
}

export function untrackNamespace(name: string): void {
  namespaces.delete(name);
}

/** Register a synchronous cleanup for the sweep; returns a function that unregisters it. */
export function onSweep(fn: () => void): () => void {
  installSweep();
  hooks.add(fn);
  return () => hooks.delete(fn);
}

/** Children tracked right now (for a lab's own cleanup: kill those it spawned). */
export function trackedChildren(): readonly ChildProcess[] {
  return [...children];
}
