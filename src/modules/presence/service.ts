import type { RedisClient } from '../../shared/redis-client.js';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { StreamSpec } from '../../realtime/stream.js';
import type { Publisher } from '../../realtime/hub.js';
import { badInput, forbidden, notFound } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import type { IdentityService } from '../identity/service.js';
import type { MessagingService } from '../messaging/service.js';
import { type PresenceView, presenceStream, toView } from './events.js';
import { type OpInput, type OpResult, PRESENCE_STATUSES, type PresenceStatus, createPresenceStore } from './store.js';
import { isRedisConnectionError } from '../../shared/redis-watch.js';

/** Most users one query or subscription may name. */
export const MAX_PRESENCE_USERS = 200;
/** How long an idle user's state (last seen, default status, text) is kept in Redis. */
const RETENTION_MS = 30 * 24 * 3_600_000;
const BATCH = 500;

export interface PresenceDeps {
  redis: RedisClient;
  /** Publishes ephemeral events (the hub on an API instance). */
  publisher: Publisher;
  identity: IdentityService;
  messaging: Pick<MessagingService, 'sharesConversationWith'>;
  config: Config['presence'];
  keyPrefix: string;
  logger: Logger;
}

/**
 * Timings derived from the config. A device lives `leaseMs` after each refresh; every instance
 * sweeps expired devices every `sweepMs`; a change is published at most `coalesceMs` after it was
 * noticed. The lease is chosen so that lease + sweep + coalesce = PRESENCE_TTL_MS: a crashed
 * instance's users are published offline at most `boundMs` (= TTL) after its last refresh.
 */
export function presenceTimings(c: Config['presence']) {
  const sweepMs = Math.max(100, Math.min(Math.floor(c.refreshMs / 2), 5_000));
  // never shorter than one refresh plus a sweep, or healthy devices would flicker
  const leaseMs = Math.max(c.ttlMs - sweepMs - c.coalesceMs, c.refreshMs + sweepMs);
  return { sweepMs, leaseMs, boundMs: leaseMs + sweepMs + c.coalesceMs };
}

const setInput = z.object({
  status: z.enum(PRESENCE_STATUSES),
  statusText: z
    .string()
    .trim()
    .max(140, 'at most 140 characters')
    .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters')
    .nullish(),
});

/**
 * Presence of users, derived from their open sockets (each socket is a device) and `setPresence`.
 * Per-socket work is a step in one Redis pipeline per tick on open and close, and per refresh; one refresh interval,
 * one sweep interval and one flush timer serve the whole instance.
 */
export function createPresenceService(deps: PresenceDeps) {
  const { config, logger, publisher } = deps;
  const timings = presenceTimings(config);
  if (timings.boundMs > config.ttlMs)
    logger.warn(
      { boundMs: timings.boundMs },
      'PRESENCE_COALESCE_MS is large for PRESENCE_TTL_MS: crashed instances’ users go offline later than the TTL',
    );
  const store = createPresenceStore(deps.redis, {
    prefix: deps.keyPrefix,
    leaseMs: timings.leaseMs,
    retentionMs: RETENTION_MS,
    immediate: config.coalesceMs === 0,
  });
  /** This instance's sockets: the devices it keeps alive. */
  const sockets = new Map<string, { orgId: string; userId: string }>();
  const inflight = new Set<Promise<unknown>>();
  /** `stopping`: no new periodic work; `closed`: nothing at all (the final flush is done). */
  let stopping = false;
  let closed = false;

  const publish = (orgId: string, userId: string, r: OpResult) =>
    // the version orders one user's changes across instances (the hub drops an older one)
    presenceStream.publish(publisher, orgId, orgId, 'PresenceChanged', toView(userId, r, r.now), r.now, { key: userId, seq: r.version });

  /** Publishes what the steps marked published, and schedules the coalesced publish of the other changes (one command). */
  const apply = async (steps: OpInput[]): Promise<OpResult[]> => {
    const results = await store.run(steps);
    const later: Array<{ orgId: string; userId: string; at: number }> = [];
    const now: Array<Promise<void>> = [];
    results.forEach((r, i) => {
      const step = steps[i] as OpInput;
      if (r.published) now.push(publish(step.orgId, step.userId, r));
      else if (r.dirty) later.push({ orgId: step.orgId, userId: step.userId, at: r.now + config.coalesceMs });
    });
    await Promise.all([...now, store.schedule(later)]);
    if (later.length > 0) armFlush(config.coalesceMs);
    return results;
  };

  const background = (what: string, p: Promise<unknown>) => {
    const tracked = p.catch((err) => {
      // an outage is reported once by the connection watcher; the next sweep catches up
      if (isRedisConnectionError(err)) logger.debug({ task: what }, 'presence update skipped: Redis unavailable');
      else logger.warn({ err, task: what }, 'presence update failed');
    });
    inflight.add(tracked);
    void tracked.finally(() => inflight.delete(tracked));
  };

  // ── socket opens and closes of one tick go out as one pipeline (a reconnect storm's sockets
  // share it instead of paying one write each); order is kept: one queue, one connection ──
  let tick: OpInput[] = [];
  const flushTick = () => {
    const steps = tick;
    tick = [];
    for (let i = 0; i < steps.length; i += BATCH) background('sockets', apply(steps.slice(i, i + BATCH)));
  };
  const queueStep = (step: OpInput) => {
    tick.push(step);
    if (tick.length === 1) setImmediate(flushTick);
  };

  // ── coalesced publishing: one timer per instance, armed for the earliest local deadline ──
  let flushTimer: NodeJS.Timeout | undefined;
  let flushAt = Number.POSITIVE_INFINITY;
  let flushing: Promise<void> | undefined;

  function armFlush(inMs: number) {
    const at = Date.now() + inMs;
    if (closed || (flushTimer && at >= flushAt)) return;
    clearTimeout(flushTimer);
    flushAt = at;
    // a couple of ms of slack: the deadline is on the Redis clock
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      flushAt = Number.POSITIVE_INFINITY;
      background('flush', flushDue());
    }, inMs + 2);
    flushTimer.unref();
  }

  /** Publishes every due coalesced change (claimed, so one instance publishes each). */
  const flushDue = (): Promise<void> => {
    flushing ??= (async () => {
      try {
        for (;;) {
          const { lease, users } = await store.claimPending(BATCH, config.coalesceMs + 10_000);
          if (users.length === 0) break;
          const results = await store.run(users.map((u) => ({ orgId: u.orgId, userId: u.userId, op: 'flush' as const })));
          await Promise.all(results.map((r, i) => (r.published ? publish(users[i]!.orgId, users[i]!.userId, r) : undefined)));
          await store.releasePending(
            lease,
            users.map((u) => u.member),
          );
          if (users.length < BATCH) break;
        }
        const next = await store.nextPendingIn();
        if (next !== undefined && next <= config.coalesceMs) armFlush(next);
      } finally {
        flushing = undefined;
      }
    })();
    return flushing;
  };

  /** Keeps this instance's devices alive; a device missing in Redis (data loss, long stall) is re-added. */
  const refresh = async () => {
    const ids = [...sockets.keys()];
    for (let i = 0; i < ids.length; i += BATCH) {
      // built right before sending, so a socket closed meanwhile is not brought back
      const steps = ids.slice(i, i + BATCH).flatMap((device) => {
        const s = sockets.get(device);
        return s ? [{ ...s, op: 'refresh' as const, device }] : [];
      });
      await apply(steps);
    }
  };

  /** Removes devices nobody refreshed (a crashed instance's) and publishes the resulting changes. */
  const sweep = async () => {
    for (let round = 0; round < 10; round++) {
      const due = await store.dueDevices(BATCH);
      if (due.length === 0) break;
      const results = await apply(due.map((d) => ({ orgId: d.orgId, userId: d.userId, op: 'read' as const, device: d.device })));
      await store.settleDue(results.map((r, i) => ({ member: due[i]!.member, score: r.deviceScore })));
      if (due.length < BATCH) break;
    }
    await flushDue(); // overdue changes, e.g. scheduled by an instance that died before publishing
  };

  const every = (ms: number, what: string, task: () => Promise<void>) => {
    let running = false;
    const t = setInterval(() => {
      if (running || stopping) return;
      running = true;
      background(
        what,
        task().finally(() => (running = false)),
      );
    }, ms);
    t.unref();
    return t;
  };
  const timers = [every(config.refreshMs, 'refresh', refresh), every(timings.sweepMs, 'sweep', sweep)];

  /** Same organisation; patients only people they share a conversation with. Else NOT_FOUND. */
  const authorize = async (viewer: Viewer, userIds: readonly string[]): Promise<{ ids: string[]; createdAt: Map<string, number> }> => {
    if (userIds.length > MAX_PRESENCE_USERS) throw badInput(`Pass at most ${MAX_PRESENCE_USERS} user ids.`, 'userIds');
    const ids = [...new Set(userIds)];
    const rows = await deps.identity.usersById(viewer, ids);
    if (rows.length !== ids.length) throw notFound('User');
    if (viewer.role === 'patient') {
      const shared = await deps.messaging.sharesConversationWith(viewer, ids);
      if (ids.some((id) => id !== viewer.userId && !shared.has(id))) throw notFound('User');
    }
    return { ids, createdAt: new Map(rows.map((r) => [r.id, r.createdAt.getTime()])) };
  };

  const read = async (orgId: string, ids: string[], createdAt: Map<string, number>): Promise<PresenceView[]> => {
    const results = await apply(ids.map((userId) => ({ orgId, userId, op: 'read' as const })));
    return results.map((r, i) => toView(ids[i]!, r, createdAt.get(ids[i]!) ?? r.now));
  };

  return {
    timings,

    /** A socket of `viewer` was acknowledged: it is a device until it closes or stops being refreshed. */
    socketOpened(viewer: Viewer, socketId: string): void {
      if (stopping || viewer.role === 'system') return;
      const s = { orgId: viewer.orgId, userId: viewer.userId };
      sockets.set(socketId, s);
      queueStep({ ...s, op: 'open', device: socketId });
    },

    socketClosed(_viewer: Viewer, socketId: string): void {
      const s = sockets.get(socketId);
      if (!s) return;
      sockets.delete(socketId);
      queueStep({ ...s, op: 'close', device: socketId });
    },

    /**
     * Sets the viewer's status. Sent on a socket (`socketId`), it applies to that device only;
     * otherwise to all the viewer's devices and to devices that connect later. The text is the
     * user's, whichever way it is sent: omitted keeps it, null or empty clears it.
     */
    async setPresence(viewer: Viewer, input: { status: unknown; statusText?: unknown }, socketId?: string): Promise<PresenceView> {
      if (viewer.role === 'system') throw forbidden('System actors have no presence.');
      const v = parseInput(setInput, input);
      const device = socketId && sockets.get(socketId)?.userId === viewer.userId ? socketId : undefined;
      const step: OpInput = {
        orgId: viewer.orgId,
        userId: viewer.userId,
        op: device ? 'set' : 'setall',
        device,
        status: v.status as PresenceStatus,
        text: v.statusText === undefined ? undefined : v.statusText || null,
      };
      const [r] = await apply([step]);
      const created = r!.changedAt ? 0 : ((await deps.identity.usersById(viewer, [viewer.userId]))[0]?.createdAt.getTime() ?? r!.now);
      return toView(viewer.userId, r!, created);
    },

    /** Current presence of users the viewer may see, in the order asked (duplicates removed). */
    async presence(viewer: Viewer, userIds: readonly string[]): Promise<PresenceView[]> {
      const { ids, createdAt } = await authorize(viewer, userIds);
      return read(viewer.orgId, ids, createdAt);
    },

    /** Authorises a `presenceChanged` subscription: current state of each user first, then changes. */
    async openChanges(viewer: Viewer, userIds: readonly string[]): Promise<StreamSpec> {
      if (userIds.length === 0) throw badInput('Pass at least one user id.', 'userIds');
      const { ids, createdAt } = await authorize(viewer, userIds);
      const watched = new Set(ids);
      const orgId = viewer.orgId;
      return presenceStream.open(orgId, {
        orgId,
        // what a user may see was checked above; the events themselves are the same for everyone
        scope: `presence:${orgId}`,
        match: (ev) => watched.has(ev.payload.userId),
        toRootEphemeral: (ev) => ev.payload,
        initial: () => read(orgId, ids, createdAt),
      });
    },

    /**
     * A device enters (`on`) or leaves a call: while in it the device shows IN_CALL, and when it
     * leaves, the status it had before comes back. A device that is not connected is left alone.
     * Any instance may do this for a device connected to another (the state is in Redis).
     */
    async callStatus(orgId: string, userId: string, device: string, on: boolean): Promise<void> {
      await apply([{ orgId, userId, op: on ? 'callon' : 'calloff', device }]);
    },

    /** Users with at least one socket on this instance. */
    localUsers(): Set<string> {
      const out = new Set<string>();
      for (const s of sockets.values()) out.add(s.userId);
      return out;
    },

    /** Sockets this instance keeps alive. */
    stats: () => ({ devices: sockets.size }),

    /** Stops the timers, finishes pending updates and publishes this instance's last coalesced changes. */
    async close(): Promise<void> {
      if (stopping) return;
      stopping = true;
      for (const t of timers) clearInterval(t);
      flushTick();
      while (inflight.size > 0) await Promise.all([...inflight]);
      if (flushTimer) {
        clearTimeout(flushTimer);
        flushTimer = undefined;
        await new Promise((r) => setTimeout(r, Math.max(0, flushAt - Date.now()) + 2));
        await flushDue().catch((err) => logger.warn({ err }, 'presence flush on close failed'));
      }
      closed = true;
      clearTimeout(flushTimer);
    },
  };
}

export type PresenceService = ReturnType<typeof createPresenceService>;
