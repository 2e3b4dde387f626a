import type { Config } from '../../config.js';
import type { Queues } from '../../jobs/queues.js';
import type { Logger } from '../../shared/logger.js';
import { reminderTick, tickId } from './events.js';

/**
 * The second whose tick delivers something due at `dueMs`, when it is scheduled at `nowMs`: the
 * first whole second at or after the due instant, but never one that has begun. A tick job never
 * starts before its second, so a tick that has not begun is always still to come, and the add of a
 * deterministic id that exists is a no-op only while that tick is still to come: nothing scheduled
 * after commit can fall between a tick's last claim and its end. Latency: at most one second.
 */
export const tickSecond = (dueMs: number, nowMs: number) => Math.max(Math.ceil(dueMs / 1000), Math.floor(nowMs / 1000) + 1);

/**
 * The producer side, shared by the API service and the worker: the ticks of the seconds in which
 * something falls due. An instance remembers the seconds it has enqueued until they begin, so a
 * bulk of reminders due at one instant costs one Redis round trip, not one per reminder (a tick
 * that Redis lost meanwhile is re-created by the reconciler).
 */
export function createTicks(deps: { queues: Queues; config: Config['reminders']; logger: Logger }) {
  const { queues, config, logger } = deps;
  const opts = { attempts: config.attempts, backoff: { type: 'exponential' as const, delay: config.backoffMs } };
  const added = new Set<number>();

  const forget = (now: number) => {
    if (added.size < 1_000) return;
    for (const s of added) if (s * 1000 <= now) added.delete(s);
  };

  /** Enqueues the ticks that deliver `times` (repeats are no-ops); `fresh` skips the memory (the reconciler). */
  async function schedule(times: ReadonlyArray<Date | number>, fresh = false): Promise<void> {
    const now = Date.now();
    forget(now);
    const seconds = new Set(times.map((t) => tickSecond(typeof t === 'number' ? t : t.getTime(), now)));
    await Promise.all(
      [...seconds].map(async (second) => {
        if (!fresh && added.has(second)) return;
        await queues.add(reminderTick, { second }, { ...opts, jobId: tickId(second), delay: Math.max(0, second * 1000 - Date.now()) });
        added.add(second);
      }),
    );
  }

  /** After a commit (bounded wait): a failed or late enqueue is not an error, the reconciler re-creates the tick. */
  const scheduleAfterCommit = (times: ReadonlyArray<Date | number>) =>
    times.length === 0 ? Promise.resolve() : queues.afterCommit(() => schedule(times), { ticks: times.length }, logger);

  return { schedule, scheduleAfterCommit };
}

export type Ticks = ReturnType<typeof createTicks>;
