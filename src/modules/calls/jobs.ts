import type { Config } from '../../config.js';
import type { Periodic } from '../../jobs/define.js';
import type { Logger } from '../../shared/logger.js';
import type { ModuleDeps, WorkerSide } from '../module.js';
import { connectTimer, ringTimer } from './events.js';
import * as repo from './repo.js';
import type { CallsService } from './service.js';
import type { Db } from '../../db/client.js';

/** What the call timers do when they fire; each is a conditional transition (a re-run does nothing). */
export function createCallTimers(d: { db: Db; calls: CallsService; config: Config['calls']; logger: Logger }) {
  const { calls } = d;
  const m = calls.metrics;

  /** T5: whoever still rings past the deadline missed the call (one notification each, same transaction). */
  async function ringTimeout(orgId: string, callId: string): Promise<boolean> {
    const row = await repo.findCall(d.db, orgId, callId);
    if (!row?.ringDeadline) return false;
    // a job that runs a little early (clocks) fails and is retried with backoff
    if (row.ringDeadline.getTime() > Date.now()) throw new NotDueYet();
    const r = await calls.systemAct(orgId, callId, { type: 'ringTimeout' });
    if (r && 'call' in r) {
      m.ringLag.observe(Math.max(0, Date.now() - row.ringDeadline.getTime()) / 1000);
      return true;
    }
    return false;
  }

  /** T7: accepted but no SDP answer relayed in time. */
  async function connectTimeout(orgId: string, callId: string): Promise<boolean> {
    const row = await repo.findCall(d.db, orgId, callId);
    if (!row?.connectDeadline) return false;
    if (row.connectDeadline.getTime() > Date.now()) throw new NotDueYet();
    const r = await calls.systemAct(orgId, callId, { type: 'connectTimeout' });
    return Boolean(r && 'call' in r);
  }

  /**
   * T9: a joined participant whose user has had no connected device (socket on any instance) and no
   * heartbeat for the grace period leaves with CONNECTION_LOST (the call ends when fewer than two
   * remain); a call past its maximum duration ends with MAX_DURATION.
   */
  async function liveness(): Promise<number> {
    const rows = await repo.liveJoined(d.db, 2_000);
    if (rows.length === 0) return 0;
    const now = Date.now();
    let changed = 0;
    const over = new Set(rows.filter((r) => r.maxEndAt.getTime() <= now).map((r) => `${r.orgId}\n${r.callId}`));
    for (const key of over) {
      const [orgId, callId] = key.split('\n') as [string, string];
      const r = await calls.systemAct(orgId, callId, { type: 'maxDuration' });
      if (r && 'call' in r) changed++;
    }
    // alive_until is pushed ahead by the API instances holding the participants' sockets (and by callHeartbeat)
    const lost = new Map<string, { orgId: string; users: string[] }>();
    for (const r of rows) {
      if (over.has(`${r.orgId}\n${r.callId}`)) continue;
      if ((r.aliveUntil?.getTime() ?? 0) > now) continue;
      const e = lost.get(r.callId) ?? { orgId: r.orgId, users: [] };
      e.users.push(r.userId);
      lost.set(r.callId, e);
    }
    for (const [callId, e] of lost) {
      const r = await calls.systemAct(e.orgId, callId, { type: 'lost', userIds: e.users });
      if (r && 'call' in r) {
        changed++;
        m.repairs.inc({ kind: 'liveness' });
      }
    }
    return changed;
  }

  return { ringTimeout, connectTimeout, liveness };
}

export type CallTimers = ReturnType<typeof createCallTimers>;

/** The calls module's worker side. */
export function callsWorker(d: ModuleDeps, u: { calls: CallsService }): Promise<WorkerSide<CallTimers>> {
  const timers = createCallTimers({ db: d.db, calls: u.calls, config: d.config.calls, logger: d.logger });
  const c = d.config.calls;
  const m = u.calls.metrics;
  const repaired = (kind: 'ring' | 'connect') => (done: boolean) => {
    if (done) m.repairs.inc({ kind });
    return done;
  };
  // the reconcilers step in only once a timer is late by this much (never racing a healthy queue)
  const graceMs = Math.min(c.reconcileMs, 1_000);
  const ring = ringTimer.duties({
    fire: ({ callId, orgId }) => timers.ringTimeout(orgId, callId),
    overdue: (before) => repo.dueRings(d.db, before, 500),
    fired: repaired('ring'),
    everyMs: c.reconcileMs,
    graceMs,
    logger: d.logger,
  });
  const connect = connectTimer.duties({
    fire: ({ callId, orgId }) => timers.connectTimeout(orgId, callId),
    overdue: (before) => repo.dueConnects(d.db, before, 500),
    fired: repaired('connect'),
    everyMs: c.reconcileMs,
    graceMs,
    logger: d.logger,
  });
  const liveness: Periodic = {
    name: 'call-liveness',
    everyMs: Math.max(500, Math.min(c.reconcileMs, Math.floor(c.livenessGraceMs / 2))),
    run: async () => {
      const n = await timers.liveness();
      if (n > 0) d.logger.info({ calls: n }, 'liveness ended calls whose devices were gone');
    },
  };
  return Promise.resolve({
    side: timers,
    duties: { jobs: [...ring.jobs, ...connect.jobs], periodic: [...ring.periodic, ...connect.periodic, liveness] },
  });
}

class NotDueYet extends Error {
  constructor() {
    super('timer not due yet; retried');
  }
}
