/**
 * The answering thread's real-time scheduling (`--realtime N`): SCHED_FIFO at priority N for the
 * calling thread only, with SCHED_RESET_ON_FORK so the threads and processes it starts later run
 * at normal priority.
 *
 * Why: on the responder's CPU the kernel's receive softirq and the answering thread compete. A
 * normal thread, even at nice -10, loses to ksoftirqd often enough under an NS flood that the
 * softirq keeps copying frames into a ring the thread cannot empty: each frame costs the full
 * receive path and is then dropped at the full ring. A SCHED_FIFO thread runs before ksoftirqd
 * whenever it has frames, so the ring stays short and the excess waits in (and is dropped from)
 * the CPU's receive backlog, before the receive path spends anything on it. The thread still
 * sleeps in epoll when it has nothing to do; the kernel's RT throttling
 * (`kernel.sched_rt_runtime_us`) leaves other tasks their share even if it never did.
 * Needs CAP_SYS_NICE (or an RLIMIT_RTPRIO of at least N).
 */
import { loadNative, type NativeModule } from './afpacket.js';

/** The calling thread's scheduling as far as `--realtime` goes. */
export interface ThreadScheduling {
  /** 'fifo', 'other' or another policy's number as text. */
  policy: string;
  /** Static priority (1..99 under SCHED_FIFO, 0 otherwise). */
  priority: number;
}

function schedulerNative(
  native?: NativeModule,
): Required<Pick<NativeModule, 'setScheduler' | 'getScheduler' | 'SCHED_FIFO' | 'SCHED_OTHER'>> {
  const mod = native ?? loadNative();
  if (mod.setScheduler === undefined || mod.getScheduler === undefined || mod.SCHED_FIFO === undefined || mod.SCHED_OTHER === undefined) {
    throw Object.assign(new Error('the native addon has no setScheduler (rebuild it)'), { code: 'ERR_NATIVE_ADDON_MISSING' });
  }
  return { setScheduler: mod.setScheduler, getScheduler: mod.getScheduler, SCHED_FIFO: mod.SCHED_FIFO, SCHED_OTHER: mod.SCHED_OTHER };
}

/** The calling thread's policy and priority. @throws ERR_NATIVE_ADDON_MISSING; a system error. */
export function threadScheduling(native?: NativeModule): ThreadScheduling {
  const n = schedulerNative(native);
  const s = n.getScheduler();
  const policy = s.policy === n.SCHED_FIFO ? 'fifo' : s.policy === n.SCHED_OTHER ? 'other' : String(s.policy);
  return { policy, priority: s.priority };
}

/**
 * Put the calling thread under SCHED_FIFO at `priority` (1..99), reset on fork. A thread that
 * already runs real-time at `priority` or above is left alone (an operator's `chrt` wins).
 * @returns whether the policy was changed.
 * @throws RangeError for a priority outside 1..99; a system error (code EPERM without
 *   CAP_SYS_NICE); ERR_NATIVE_ADDON_MISSING.
 */
export function setRealtime(priority: number, native?: NativeModule): boolean {
  if (!Number.isInteger(priority) || priority < 1 || priority > 99) {
    throw Object.assign(new RangeError(`real-time priority must be 1..99, got ${priority}`), { code: 'ERR_OUT_OF_RANGE' });
  }
  const n = schedulerNative(native);
  const now = n.getScheduler();
  if (now.policy !== n.SCHED_OTHER && now.priority >= priority) return false;
  n.setScheduler(n.SCHED_FIFO, priority, true);
  return true;
}
