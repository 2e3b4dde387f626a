import { createHmac } from 'node:crypto';
import type { RedisClient } from '../../shared/redis-client.js';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db, Executor } from '../../db/client.js';
import type { Queues } from '../../jobs/queues.js';
import { scheduleAfterCommit } from '../../jobs/timer.js';
import type { Commit, EventSink } from '../../realtime/commit.js';
import type { Publisher } from '../../realtime/hub.js';
import type { StreamSpec } from '../../realtime/stream.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { badInput, forbidden, notFound, rateLimited } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import { type PageArgs, forwardConnection, forwardPage, parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import type { IdentityService } from '../identity/service.js';
import type { MessagingService } from '../messaging/service.js';
import type { NotificationsService } from '../notifications/service.js';
import type { PresenceService } from '../presence/service.js';
import { callConflict } from './errors.js';
import { callMetrics } from './metrics.js';
import {
  type CallEventPayloads,
  type CallEventRoot,
  type CallSnapshot,
  SIGNAL_KINDS,
  callStream,
  connectTimer,
  missedCallKey,
  ringTimer,
  toCallRoot,
  toSignalRoot,
} from './events.js';
import { type Action, type Outcome, isTerminal, transition } from './machine.js';
import * as repo from './repo.js';
import { ACTIVE_CALL_STATES, CALL_MEDIA, CALL_STATES, type CallRow, type CallState, type QualitySummary } from './tables.js';

export interface CallsDeps {
  db: Db;
  commit: Commit;
  cursors: CursorCodec;
  redis: RedisClient;
  publisher: Publisher;
  queues: Queues;
  logger: Logger;
  identity: IdentityService;
  messaging: MessagingService;
  notifications: NotificationsService;
  presence: PresenceService;
  config: Config['calls'];
  limits: Config['limits'];
  keyPrefix: string;
  registry?: Registry;
}

/** A device id: Matrix `party_id` rules (1-255 of `[0-9A-Za-z._~-]`). */
const deviceId = z.string().regex(/^[0-9A-Za-z._~-]{1,255}$/, 'expected 1-255 letters, digits, . _ ~ or -');

const startInput = z
  .object({
    conversationId: z.string().nullish(),
    calleeIds: z.array(z.string().min(1).max(200)).min(1).max(50).nullish(),
    media: z.enum(CALL_MEDIA),
    clientCallId: z.string().min(1).max(128).nullish(),
    deviceId: deviceId.nullish(),
    callbackOf: z.string().nullish(),
  })
  .refine((v) => v.conversationId || v.calleeIds, { message: 'give conversationId or calleeIds', path: ['conversationId'] });

const signalInput = z.object({
  callId: z.string(),
  toUserId: z.string().min(1).max(200),
  toDeviceId: deviceId.nullish(),
  fromDeviceId: deviceId.nullish(),
  kind: z.enum(SIGNAL_KINDS),
  payload: z.unknown(),
});
const sdp = z
  .object({ type: z.enum(['offer', 'answer', 'pranswer', 'rollback']), sdp: z.string().max(1_000_000).optional() })
  .passthrough();
const candidate = z
  .object({
    candidate: z.string().max(4_096),
    sdpMid: z.string().max(256).nullish(),
    sdpMLineIndex: z.number().int().min(0).max(1_024).nullish(),
    usernameFragment: z.string().max(256).nullish(),
  })
  .passthrough();

const qualityInput = z.object({
  callId: z.string(),
  deviceId: deviceId.nullish(),
  rttMs: z.number().min(0).max(600_000).nullish(),
  jitterMs: z.number().min(0).max(600_000).nullish(),
  packetLossPct: z.number().min(0).max(100).nullish(),
  outboundKbps: z.number().min(0).max(10_000_000).nullish(),
  candidatePairType: z.enum(['host', 'srflx', 'prflx', 'relay']).nullish(),
});

/** What happened to a call as the result of an action, for the caller and the after-commit work. */
interface Applied {
  before: CallRow;
  /** The call row and its participants after the change. */
  row: CallRow;
  parts: repo.ParticipantWithUser[];
  call: CallSnapshot;
  outcome: Extract<Outcome, { ok: true }>;
}

/** A Redis fixed window per sender and call, and the per-sender sequence: one round trip. */
const SIGNAL_LUA = `
local c = redis.call('INCR', KEYS[2])
if c == 1 then redis.call('PEXPIRE', KEYS[2], 1000) end
if c > tonumber(ARGV[1]) then return {0, c} end
local s = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {s, c}
`;

/**
 * Call signaling. Every change goes through {@link transition} inside one transaction that locks
 * the call row, writes the new state and appends the durable events (and missed-call
 * notifications) to each participant's `calls:<user>` stream. Timers are scheduled after commit;
 * PostgreSQL stays the truth (the reconcilers fire what a lost job would have).
 */
export function createCallsService(deps: CallsDeps) {
  const { db, commit, logger, config } = deps;
  const metrics = callMetrics(deps.registry, () => repo.liveCounts(db));
  const seqKey = (callId: string, device: string) => `${deps.keyPrefix}:call:{${callId}}:seq:${device}`;
  const rateKey = (callId: string, device: string) => `${deps.keyPrefix}:call:{${callId}}:rate:${device}`;
  if (!(deps.redis as RedisClient & { wlCallSignal?: unknown }).wlCallSignal)
    deps.redis.defineCommand('wlCallSignal', { numberOfKeys: 2, lua: SIGNAL_LUA });

  const snapshotOf = async (ex: Executor, row: CallRow) => (await repo.snapshotsOf(ex, row.orgId, [row]))[0] as CallSnapshot;

  /**
   * The call as it is now, read at most once per 250 ms per call on this instance: every device
   * rendering the same IncomingCall at once (fan-out) shares one read. A render can be 250 ms
   * behind, never ahead; the CallStateChanged that follows any change corrects it.
   */
  const recent = new Map<string, { at: number; call: Promise<CallSnapshot | undefined> }>();
  const recentCall = (orgId: string, id: string): Promise<CallSnapshot | undefined> => {
    const key = `${orgId}\n${id}`;
    const hit = recent.get(key);
    if (hit && Date.now() - hit.at < 250) return hit.call;
    if (recent.size > 5_000) recent.clear();
    const call = repo.findCall(db, orgId, id).then((row) => (row ? snapshotOf(db, row) : undefined));
    recent.set(key, { at: Date.now(), call });
    return call;
  };

  /** The call if the viewer takes part in it (or is an admin of its org); else NOT_FOUND. */
  const visibleCall = async (viewer: Viewer, id: string): Promise<CallSnapshot> => {
    const row = isUuid(id) ? await repo.findCall(db, viewer.orgId, id) : undefined;
    if (!row) throw notFound('Call');
    const call = await snapshotOf(db, row);
    if (viewer.role !== 'admin' && !call.participants.some((p) => p.user.id === viewer.userId)) throw notFound('Call');
    return call;
  };

  /** Appends one event per participant (positions reserved in one statement). */
  const appendAll = async (
    tx: Executor,
    events: EventSink,
    orgId: string,
    items: Array<
      { userId: string } & (
        | { type: 'IncomingCall'; payload: CallEventPayloads['IncomingCall'] }
        | { type: 'CallStateChanged'; payload: CallEventPayloads['CallStateChanged'] }
      )
    >,
    subject: string,
  ) => {
    const first = await callStream.reserve(
      tx,
      items.map((i) => ({ key: i.userId, orgId, count: 1 })),
    );
    // one statement for every participant's event
    await callStream.insertAt(
      tx,
      events,
      items.map(
        (i) => ({ key: i.userId, orgId, type: i.type, payload: i.payload, subject, position: first.get(i.userId) as number }) as never,
      ),
    );
  };

  /** Missed-call notifications, in the caller's transaction (one per call and callee, by key). */
  const notifyMissed = async (tx: Executor, events: EventSink, call: CallSnapshot, userIds: readonly string[]) => {
    if (userIds.length === 0) return;
    const caller = call.participants.find((p) => p.role === 'caller')?.user;
    await deps.notifications.createManyInTx(
      tx,
      events,
      userIds.map((userId) => ({
        orgId: call.orgId,
        userId,
        kind: 'missed_call' as const,
        priority: 'high' as const,
        title: `Missed ${call.media} call${caller ? ` from ${caller.name}` : ''}`.slice(0, 200),
        body: null,
        data: {
          callId: call.id,
          callerId: call.initiatorId,
          conversationId: call.conversationId,
          media: call.media,
          callback: { callbackOf: call.id },
        },
        clientKey: missedCallKey(call.id, userId),
      })),
    );
    metrics.missed.inc(userIds.length);
  };

  /**
   * Applies an action to a call in one transaction (the call row locked), writes what the machine
   * decided and appends a CallStateChanged to every participant. Refusals become CONFLICT errors.
   */
  const actInTx = async (
    tx: Executor,
    events: EventSink,
    orgId: string,
    callId: string,
    action: Action,
    actorId: string | null,
  ): Promise<Applied | { noop: CallSnapshot }> => {
    const before = await repo.findCall(tx, orgId, callId, true);
    if (!before) throw notFound('Call');
    const parts = (await repo.participantsOf(tx, orgId, [callId])).get(callId) ?? [];
    const outcome = transition(before, parts, action);
    // someone who is not in the call learns nothing about it, exactly as for another org's call
    if (!outcome.ok) throw outcome.refusal === 'NOT_PARTICIPANT' ? notFound('Call') : callConflict(outcome.refusal, before.state);
    if (outcome.noop) return { noop: repo.toSnapshot(before, parts) };
    const now = new Date();
    await repo.applyParticipantChanges(tx, callId, outcome.participants, now, new Date(now.getTime() + config.livenessGraceMs));
    const stillRinging = parts.some((p) => (outcome.participants.find((c) => c.userId === p.userId)?.state ?? p.state) === 'ringing');
    const terminal = isTerminal(outcome.state);
    const set: Parameters<typeof repo.updateCall>[2] = { state: outcome.state };
    if (outcome.reason) set.reason = outcome.reason;
    if (!stillRinging || terminal) set.ringDeadline = null;
    if (before.state === 'ringing' && outcome.state === 'accepted') {
      set.acceptedAt = now;
      set.connectDeadline = new Date(now.getTime() + config.connectTimeoutMs);
    }
    if (outcome.state === 'in_progress' && before.state !== 'in_progress') {
      set.connectedAt = now;
      set.connectDeadline = null;
    }
    if (terminal) {
      set.endedAt = now;
      set.connectDeadline = null;
    }
    const updated = await repo.updateCall(tx, callId, set);
    // the participants after the change, from memory (the same rows the UPDATEs wrote)
    const after = parts.map((p): repo.ParticipantWithUser => {
      const c = outcome.participants.find((x) => x.userId === p.userId);
      if (!c) return p;
      return {
        ...p,
        state: c.state,
        reason: c.reason,
        deviceId: c.deviceId ?? p.deviceId,
        presenceDevice: c.presenceDevice ?? p.presenceDevice,
        joinedAt: c.state === 'joined' ? now : p.joinedAt,
        leftAt: c.state === 'left' ? now : p.leftAt,
      };
    });
    const call = repo.toSnapshot(updated, after);
    const answered = outcome.answeredBy;
    await appendAll(
      tx,
      events,
      orgId,
      call.participants.map((p) => ({
        userId: p.user.id,
        type: 'CallStateChanged' as const,
        payload: {
          call,
          from: before.state,
          to: outcome.state,
          reason: outcome.reason,
          actorId,
          answeredBy: answered ? { userId: answered.userId, deviceId: answered.deviceId } : null,
        },
      })),
      callId,
    );
    await notifyMissed(tx, events, call, outcome.missed);
    return { before, row: updated, parts: after, call, outcome };
  };

  const act = async (orgId: string, callId: string, action: Action, actorId: string | null): Promise<Applied | { noop: CallSnapshot }> => {
    const result = await commit((tx, events) => actInTx(tx, events, orgId, callId, action, actorId));
    if ('noop' in result) return result;
    await afterTransition(result);
    return result;
  };

  /** Timers and presence after a committed transition (best effort: PostgreSQL is the truth). */
  const afterTransition = async ({ before, row, parts, call, outcome }: Applied) => {
    const ids = { callId: call.id, orgId: call.orgId };
    metrics.transitions.inc({ from: before.state, to: outcome.state, reason: outcome.reason ?? 'none' });
    if (before.ringDeadline && !call.ringDeadline)
      await deps.queues.afterCommit(() => ringTimer.cancel(deps.queues, ids), { callId: call.id }, logger);
    if (before.state === 'ringing' && outcome.state === 'accepted') {
      metrics.setup.observe((Date.now() - Date.parse(call.createdAt)) / 1000);
      if (row.connectDeadline) await scheduleAfterCommit(connectTimer, deps.queues, ids, row.connectDeadline, logger);
    }
    if (before.state === 'accepted' && outcome.state !== 'accepted') {
      await deps.queues.afterCommit(() => connectTimer.cancel(deps.queues, ids), { callId: call.id }, logger);
      if (outcome.state === 'in_progress' && call.acceptedAt) metrics.connect.observe((Date.now() - Date.parse(call.acceptedAt)) / 1000);
    }
    if (isTerminal(outcome.state)) {
      metrics.ended.inc({ state: outcome.state, reason: outcome.reason ?? 'none' });
      if (call.connectedAt && call.endedAt) metrics.duration.observe((Date.parse(call.endedAt) - Date.parse(call.connectedAt)) / 1000);
    }
    // presence: joined devices show IN_CALL while the call is live; leaving restores their status
    const live = !isTerminal(outcome.state) && outcome.state !== 'ringing';
    const changed = new Set(outcome.participants.map((c) => c.userId));
    const devices = new Map(parts.flatMap((p) => (p.presenceDevice ? [[p.userId, p.presenceDevice] as const] : [])));
    const updates = call.participants.flatMap((p) => {
      const device = devices.get(p.user.id);
      const on = live && p.state === 'joined';
      if (!device || !(changed.has(p.user.id) || (on && before.state === 'ringing'))) return [];
      return [
        deps.presence.callStatus(call.orgId, p.user.id, device, on).catch((err) => {
          logger.debug({ err }, 'call presence update failed');
        }),
      ];
    });
    // like the timers above: waited for at most PUBLISH_TIMEOUT_MS (Redis may hang)
    if (updates.length > 0) await deps.queues.afterCommit(() => Promise.all(updates), { callId: call.id }, logger);
  };

  const pairKey = (a: string, b: string) => (a < b ? `${a}\n${b}` : `${b}\n${a}`);
  const requestHash = (v: { conversationId: string | null; calleeIds: string[]; media: string; callbackOf: string | null }) =>
    createHmac('sha256', 'call-request').update(JSON.stringify(v)).digest('base64url');

  const replayStart = (row: CallRow, hash: string) => {
    if (row.requestHash !== hash) throw callConflict('IDEMPOTENCY_KEY_REUSED', row.state);
    return snapshotOf(db, row);
  };

  const busyPolicy = async (orgId: string): Promise<'ring' | 'reject_busy'> => (await repo.orgBusyPolicy(db, orgId)) ?? config.busyPolicy;

  /** Counts a new call against the user's per-minute budget. */
  const checkStartRate = async (viewer: Viewer) => {
    const minute = Math.floor(Date.now() / 60_000);
    const key = `${deps.keyPrefix}:call:starts:{${viewer.orgId}:${viewer.userId}}:${minute}`;
    const [[, n]] = ((await deps.redis.multi().incr(key).pexpire(key, 61_000).exec()) ?? [[null, 0]]) as [[unknown, number]];
    if (Number(n) > config.startsPerMinute) throw rateLimited(Math.max(1, 60 - Math.floor((Date.now() / 1000) % 60)));
  };

  const service = {
    /**
     * Starts a call (T1): rings the callees' devices for `ringTimeoutMs`. Idempotent on
     * `clientCallId`. A call to someone who is calling you right now merges into theirs (glare):
     * it is accepted on this device and returned with reason GLARE_MERGED.
     */
    async startCall(viewer: Viewer, input: unknown, socketId?: string): Promise<CallSnapshot> {
      if (viewer.role === 'service' || viewer.role === 'system') throw forbidden('Service accounts cannot place calls.');
      const v = parseInput(startInput, input);
      const device = v.deviceId ?? socketId ?? 'http';
      const conversationId = v.conversationId ?? null;
      const callbackOf = v.callbackOf ?? null;
      const wanted = v.calleeIds ? [...new Set(v.calleeIds)].sort() : undefined;
      const hash = requestHash({ conversationId, calleeIds: wanted ?? [], media: v.media, callbackOf });
      // without a key every start is a new call (the stored key is then a fresh id nobody repeats)
      const clientCallId = v.clientCallId ?? `auto:${newId()}`;
      const prior = v.clientCallId ? await repo.findByClientKey(db, viewer.orgId, viewer.userId, clientCallId) : undefined;
      if (prior) return replayStart(prior, hash);

      // who rings: the other members of the conversation, or the named users (sharing a conversation with the caller)
      let callees: string[];
      if (conversationId) {
        if (!isUuid(conversationId)) throw notFound('Conversation');
        const conv = await deps.messaging.getConversation(viewer, conversationId, true);
        const members = (await deps.messaging.members(viewer, conv.id)).map((m) => m.id);
        const others = members.filter((id) => id !== viewer.userId);
        if (wanted) {
          if (wanted.some((id) => !others.includes(id)))
            throw badInput('calleeIds: every callee must be another member of the conversation.', 'calleeIds');
          callees = wanted;
        } else callees = others;
      } else {
        callees = (wanted ?? []).filter((id) => id !== viewer.userId);
        if (callees.length !== (wanted ?? []).length) throw badInput('calleeIds: you cannot call yourself.', 'calleeIds');
        const shared = await deps.messaging.sharesConversationWith(viewer, callees);
        if (callees.some((id) => !shared.has(id)))
          throw badInput('calleeIds: you can only call people you share a conversation with.', 'calleeIds');
      }
      const users = await deps.identity.usersById(viewer, callees);
      if (users.length !== callees.length || users.some((u) => u.role === 'service'))
        throw badInput('calleeIds: every callee must be a (non-service) user of your organisation.', 'calleeIds');
      if (callees.length === 0) throw badInput('There is nobody else to call in this conversation.', 'conversationId');
      if (callees.length > config.maxCallees) throw badInput(`A call can ring at most ${config.maxCallees} people.`, 'calleeIds');
      if (callbackOf && !(isUuid(callbackOf) && (await repo.findCall(db, viewer.orgId, callbackOf))))
        throw badInput('callbackOf: no such call.', 'callbackOf');

      const direct = callees.length === 1;
      const pair = direct ? pairKey(viewer.userId, callees[0] as string) : null;
      const busy = await repo.busyUsers(db, viewer.orgId, callees);
      const rejectBusy = direct && busy.size > 0 && (await busyPolicy(viewer.orgId)) === 'reject_busy';
      await checkStartRate(viewer);

      const attempt = async (): Promise<{ call: CallSnapshot; created: boolean; glare?: CallRow }> =>
        commit(async (tx, events) => {
          const id = newId();
          const now = new Date();
          const insert = () =>
            repo.insertCall(tx, {
              id,
              orgId: viewer.orgId,
              kind: direct ? 'direct' : 'group',
              media: v.media,
              state: rejectBusy ? 'rejected' : 'ringing',
              reason: rejectBusy ? 'busy' : null,
              initiatorId: viewer.userId,
              conversationId,
              pairKey: pair,
              clientCallId,
              requestHash: hash,
              callbackOf,
              calleeBusy: busy.size > 0,
              createdAt: now,
              ringDeadline: rejectBusy ? null : new Date(now.getTime() + config.ringTimeoutMs),
              maxEndAt: new Date(now.getTime() + config.maxDurationMs),
              endedAt: rejectBusy ? now : null,
            });
          let row = await insert();
          if (!row) {
            // the key was taken meanwhile (a concurrent retry), or the pair already has a live call
            const byKey = await repo.findByClientKey(tx, viewer.orgId, viewer.userId, clientCallId);
            if (byKey) return { call: await replayStart(byKey, hash), created: false };
            const live = pair ? await repo.findLivePair(tx, viewer.orgId, pair) : undefined;
            if (!live) throw new RetryStart();
            if (live.ringDeadline && live.ringDeadline.getTime() <= Date.now() && live.state === 'ringing') {
              // their last call rang out but its timer has not fired yet: end it here, then ring anew
              await actInTx(tx, events, viewer.orgId, live.id, { type: 'ringTimeout' }, null);
              row = await insert();
              if (!row) throw new RetryStart();
            } else return { call: await snapshotOf(tx, live), created: false, glare: live };
          }
          const names = new Map(users.map((u) => [u.id, u]));
          const parts: repo.ParticipantWithUser[] = [
            {
              callId: id,
              userId: viewer.userId,
              orgId: viewer.orgId,
              role: 'caller',
              state: rejectBusy ? 'left' : 'joined',
              deviceId: device,
              presenceDevice: socketId ?? null,
              joinedAt: now,
              aliveUntil: new Date(now.getTime() + config.livenessGraceMs),
              leftAt: rejectBusy ? now : null,
              reason: rejectBusy ? 'busy' : null,
              quality: null,
              name: viewer.name,
              userRole: viewer.role,
            },
            ...[...callees].sort().map(
              (userId): repo.ParticipantWithUser => ({
                callId: id,
                userId,
                orgId: viewer.orgId,
                role: 'callee',
                state: rejectBusy ? 'declined' : 'ringing',
                deviceId: null,
                presenceDevice: null,
                joinedAt: null,
                aliveUntil: null,
                leftAt: null,
                reason: rejectBusy ? 'busy' : null,
                quality: null,
                name: names.get(userId)?.name ?? '',
                userRole: names.get(userId)?.role ?? 'patient',
              }),
            ),
          ];
          await repo.insertParticipants(
            tx,
            parts.map(({ name: _n, userRole: _r, ...p }) => p),
          );
          const call = repo.toSnapshot(row, parts);
          await appendAll(
            tx,
            events,
            viewer.orgId,
            [
              ...(rejectBusy ? [] : callees.map((userId) => ({ userId, type: 'IncomingCall' as const, payload: { call } }))),
              {
                userId: viewer.userId,
                type: 'CallStateChanged' as const,
                payload: { call, from: null, to: call.state, reason: call.reason, actorId: viewer.userId, answeredBy: null },
              },
            ],
            id,
          );
          return { call, created: true };
        });

      let r: Awaited<ReturnType<typeof attempt>> | undefined;
      for (let i = 0; i < 3 && !r; i++) {
        try {
          r = await attempt();
        } catch (err) {
          if (!(err instanceof RetryStart)) throw err;
        }
      }
      if (!r) throw callConflict('CALL_NOT_RINGING', 'ringing');
      if (r.created) {
        metrics.started.inc({ kind: r.call.kind, media: r.call.media });
        if (r.call.ringDeadline)
          await scheduleAfterCommit(
            ringTimer,
            deps.queues,
            { callId: r.call.id, orgId: r.call.orgId },
            new Date(r.call.ringDeadline),
            logger,
          );
        return r.call;
      }
      const live = r.glare;
      if (!live) return r.call;
      // glare: B is calling A while A calls B → A answers B's call on this device
      const mine = r.call.participants.find((p) => p.user.id === viewer.userId);
      if (live.state === 'ringing' && live.initiatorId !== viewer.userId && mine?.state === 'ringing') {
        const merged = await act(
          viewer.orgId,
          live.id,
          {
            type: 'accept',
            userId: viewer.userId,
            deviceId: device,
            meshMax: config.meshMax,
            at: Date.now(),
            glare: true,
            presenceDevice: socketId,
          },
          viewer.userId,
        ).catch(async (err) => {
          // the callee accepted or the ring ended in between: return the call as it is now
          logger.debug({ err }, 'glare merge lost a race');
          return { noop: await visibleCall(viewer, live.id) };
        });
        if ('call' in merged) metrics.glare.inc();
        return 'call' in merged ? merged.call : merged.noop;
      }
      // already calling them, or already talking: the existing call, unchanged
      return r.call;
    },

    /** Answers a ringing call on a device (T2); the first committed answer wins. */
    async acceptCall(viewer: Viewer, id: string, device?: string | null, socketId?: string): Promise<CallSnapshot> {
      if (!isUuid(id)) throw notFound('Call');
      const d = device == null ? (socketId ?? 'http') : parseInput(deviceId, device, 'deviceId');
      const r = await act(
        viewer.orgId,
        id,
        { type: 'accept', userId: viewer.userId, deviceId: d, meshMax: config.meshMax, at: Date.now(), presenceDevice: socketId },
        viewer.userId,
      ).catch((err) => {
        if (err?.extensions?.reason === 'ANSWERED_ELSEWHERE') metrics.answeredElsewhere.inc();
        throw err;
      });
      return 'call' in r ? r.call : r.noop;
    },

    /** Declines a ringing call (T3). */
    async rejectCall(viewer: Viewer, id: string): Promise<CallSnapshot> {
      if (!isUuid(id)) throw notFound('Call');
      const r = await act(viewer.orgId, id, { type: 'reject', userId: viewer.userId }, viewer.userId);
      return 'call' in r ? r.call : r.noop;
    },

    /** Hangs up (T4 cancel while ringing, T8 leave); ending an ended call returns it unchanged. */
    async endCall(viewer: Viewer, id: string, reason?: string | null): Promise<CallSnapshot> {
      if (!isUuid(id)) throw notFound('Call');
      const why = reason == null ? undefined : parseInput(z.enum(['hangup', 'ice_failed', 'media_failed']), reason, 'reason');
      const r = await act(viewer.orgId, id, { type: 'end', userId: viewer.userId, reason: why }, viewer.userId);
      return 'call' in r ? r.call : r.noop;
    },

    /**
     * Relays SDP or an ICE candidate to the other party's answering device (ephemeral: never
     * stored or replayed). Only between joined participants of an accepted call; numbered per
     * sending device. The first ANSWER relayed marks the call IN_PROGRESS.
     */
    async sendCallSignal(viewer: Viewer, input: unknown): Promise<boolean> {
      const started = performance.now();
      const v = parseInput(signalInput, input);
      const size = Buffer.byteLength(JSON.stringify(v.payload ?? null));
      if (size > config.signalMaxBytes) throw badInput(`payload: at most ${config.signalMaxBytes} bytes.`, 'payload');
      const payload = parseInput(v.kind === 'ice_candidate' ? candidate : sdp, v.payload, 'payload');
      if (!isUuid(v.callId)) throw notFound('Call');
      const rows = await repo.signalRoute(db, viewer.orgId, v.callId, viewer.userId, v.toUserId);
      const me = rows.find((r) => r.userId === viewer.userId);
      if (!me) throw notFound('Call');
      const state = me.state as CallState;
      if (state === 'ringing') throw callConflict('CALL_NOT_ACCEPTED', state);
      if (isTerminal(state)) throw callConflict('CALL_ENDED', state);
      if (me.pstate !== 'joined') throw callConflict('NOT_JOINED', state);
      const fromDevice = v.fromDeviceId ?? me.deviceId ?? 'http';
      if (fromDevice !== me.deviceId) throw forbidden('Send signals from the device that joined the call.');
      const them = v.toUserId === viewer.userId ? undefined : rows.find((r) => r.userId === v.toUserId);
      if (them?.pstate !== 'joined' || !them.deviceId || (v.toDeviceId && v.toDeviceId !== them.deviceId)) {
        metrics.signals.inc({ kind: v.kind, result: 'rejected' });
        throw forbidden('Signals go only to another joined participant of the call, on the device that joined it.');
      }
      const [seq] = (await (
        deps.redis as RedisClient & { wlCallSignal(...a: Array<string | number>): Promise<[number, number]> }
      ).wlCallSignal(seqKey(v.callId, fromDevice), rateKey(v.callId, fromDevice), config.signalRatePerSecond, config.maxDurationMs)) as [
        number,
        number,
      ];
      if (seq === 0) {
        metrics.signals.inc({ kind: v.kind, result: 'rate_limited' });
        throw rateLimited(1);
      }
      await callStream.publish(deps.publisher, v.toUserId, viewer.orgId, 'CallSignal', {
        callId: v.callId,
        fromUserId: viewer.userId,
        fromUserName: viewer.name,
        fromUserRole: viewer.role,
        fromDeviceId: fromDevice,
        toUserId: v.toUserId,
        toDeviceId: them.deviceId,
        signalKind: v.kind,
        payload,
        seq: Number(seq),
      });
      metrics.signals.inc({ kind: v.kind, result: 'delivered' });
      metrics.signalBytes.observe(size);
      metrics.signalSeconds.observe((performance.now() - started) / 1000);
      if (v.kind === 'answer' && state === 'accepted')
        await act(viewer.orgId, v.callId, { type: 'connected' }, viewer.userId).catch(() => {});
      return true;
    },

    /** A call the viewer takes part in (admins: any call of their organisation), or null. */
    async call(viewer: Viewer, id: string): Promise<CallSnapshot | null> {
      return visibleCall(viewer, id).catch(() => null);
    },

    /** The viewer's live calls (ringing, accepted, in progress), newest first. */
    async activeCalls(viewer: Viewer): Promise<CallSnapshot[]> {
      const rows = await repo.callsOfUser(db, viewer.orgId, viewer.userId, { states: ACTIVE_CALL_STATES, limit: 50 });
      return repo.snapshotsOf(db, viewer.orgId, rows);
    },

    /** The viewer's calls, newest first, optionally of one conversation and in some states. */
    async callHistory(viewer: Viewer, args: PageArgs & { states?: readonly string[] | null; conversationId?: string | null }) {
      const states = args.states ? parseInput(z.array(z.enum(CALL_STATES)).max(7), args.states, 'states') : undefined;
      if (args.conversationId) await deps.messaging.getConversation(viewer, args.conversationId, true);
      const scope = `calls-page:${viewer.userId}:${args.conversationId ?? ''}:${(states ?? []).join(',')}`;
      const page = forwardPage(args, deps.limits, deps.cursors, scope, 'callHistory');
      const rows = await repo.callsOfUser(db, viewer.orgId, viewer.userId, {
        states,
        limit: page.limit + 1,
        afterId: page.afterId,
        conversationId: args.conversationId ?? undefined,
      });
      const snaps = await repo.snapshotsOf(db, viewer.orgId, rows);
      const byId = new Map(snaps.map((s) => [s.id, s]));
      return forwardConnection(rows, page, deps.cursors, scope, (r) => byId.get(r.id) as CallSnapshot);
    },

    /** Keeps an HTTP-only client's call alive (the liveness check counts it as a live device). */
    async callHeartbeat(viewer: Viewer, id: string): Promise<boolean> {
      const call = await visibleCall(viewer, id);
      const me = call.participants.find((p) => p.user.id === viewer.userId);
      if (me?.state !== 'joined' || isTerminal(call.state)) return false;
      await repo.touchParticipants(db, [{ callId: id, userId: viewer.userId }], new Date(Date.now() + config.livenessGraceMs));
      return true;
    },

    /** Records a quality report of the viewer's device: the last one and a running summary. */
    async reportCallQuality(viewer: Viewer, input: unknown): Promise<boolean> {
      const v = parseInput(qualityInput, input);
      const call = await visibleCall(viewer, v.callId);
      const me = call.participants.find((p) => p.user.id === viewer.userId);
      if (!me || me.joinedAt === null) throw callConflict('NOT_JOINED', call.state);
      const parts = (await repo.participantsOf(db, viewer.orgId, [v.callId])).get(v.callId) ?? [];
      const prev = parts.find((p) => p.userId === viewer.userId)?.quality ?? null;
      const last = {
        rttMs: v.rttMs ?? null,
        jitterMs: v.jitterMs ?? null,
        packetLossPct: v.packetLossPct ?? null,
        outboundKbps: v.outboundKbps ?? null,
        candidatePairType: v.candidatePairType ?? null,
        at: new Date().toISOString(),
      };
      const max = (a: number | null | undefined, b: number | null) => (a == null ? b : b == null ? a : Math.max(a, b));
      const summary: QualitySummary = {
        reports: (prev?.reports ?? 0) + 1,
        last,
        maxRttMs: max(prev?.maxRttMs, last.rttMs),
        maxPacketLossPct: max(prev?.maxPacketLossPct, last.packetLossPct),
      };
      await repo.saveQuality(db, v.callId, viewer.userId, summary);
      if (last.rttMs != null) metrics.rtt.observe(last.rttMs);
      if (last.packetLossPct != null) metrics.loss.observe(last.packetLossPct);
      if (last.candidatePairType) metrics.pairs.inc({ type: last.candidatePairType });
      return true;
    },

    /** The viewer's last quality summary on a call (participants see their own; admins all). */
    async qualityOf(viewer: Viewer, callId: string, userId: string): Promise<QualitySummary | null> {
      if (viewer.role !== 'admin' && viewer.userId !== userId) return null;
      const parts = (await repo.participantsOf(db, viewer.orgId, [callId])).get(callId) ?? [];
      return parts.find((p) => p.userId === userId)?.quality ?? null;
    },

    /**
     * STUN/TURN servers for RTCPeerConnection. With TURN configured, time-limited credentials in
     * the TURN REST API form coturn accepts (`use-auth-secret`): username `<expiry>:<userId>`,
     * credential base64(HMAC-SHA1(secret, username)).
     */
    callIceServers(viewer: Viewer) {
      const t = config.turn;
      const iceServers: Array<{ urls: string[]; username: string | null; credential: string | null }> = [];
      if (t.stunUris.length > 0) iceServers.push({ urls: t.stunUris, username: null, credential: null });
      if (t.uris.length > 0 && t.secret) {
        const username = `${Math.floor(Date.now() / 1000) + t.ttlSeconds}:${viewer.userId}`;
        const credential = createHmac('sha1', t.secret).update(username).digest('base64');
        iceServers.push({ urls: t.uris, username, credential });
        metrics.turnIssued.inc();
      }
      return { iceServers, ttlSeconds: t.ttlSeconds, turnConfigured: t.uris.length > 0 && Boolean(t.secret) };
    },

    /** Sets the organisation's busy policy (admins). */
    async setCallBusyPolicy(viewer: Viewer, policy: unknown): Promise<'ring' | 'reject_busy'> {
      if (viewer.role !== 'admin') throw forbidden('Only admins can change the call policy.');
      const p = parseInput(z.enum(['ring', 'reject_busy']), policy, 'policy');
      await repo.setOrgBusyPolicy(db, viewer.orgId, p);
      return p;
    },
    callBusyPolicy: (viewer: Viewer) => busyPolicy(viewer.orgId),

    /**
     * Renders an IncomingCall with the call's CURRENT state (a late device sees it is over and
     * does not ring); other events carry the call as of their commit.
     */
    async current(viewer: Viewer, call: CallSnapshot): Promise<CallSnapshot> {
      const now = await recentCall(call.orgId, call.id).catch(() => undefined);
      return now?.participants.some((p) => p.user.id === viewer.userId) ? now : call;
    },

    /**
     * Authorises `callEvents`: the viewer's own call stream. Active calls come first (a device
     * opened mid-ring rings without a cursor); signals reach only the device they are addressed to.
     */
    async openEvents(
      viewer: Viewer,
      after: string | null | undefined,
      device: string | null | undefined,
      socketId?: string,
    ): Promise<StreamSpec> {
      if (viewer.role === 'service' || viewer.role === 'system') throw forbidden('Service accounts have no calls.');
      const mine = device == null ? socketId : parseInput(deviceId, device, 'deviceId');
      return callStream.open(viewer.userId, {
        orgId: viewer.orgId,
        after,
        cursors: deps.cursors,
        scope: `calls:${viewer.orgId}:${viewer.userId}`,
        shares: ['orgId', 'userId', 'role', 'name'],
        // a signal goes only to the socket of the device it is addressed to
        forSubscriber: (ev, s) => ev.type !== 'CallSignal' || ev.payload.toDeviceId === (mine ?? s.socketId),
        toRoot: toCallRoot,
        toRootEphemeral: toSignalRoot,
        initial: after
          ? undefined
          : async () =>
              (await service.activeCalls(viewer)).map(
                (call): CallEventRoot => ({ kind: 'ActiveCall', at: new Date().toISOString(), call }),
              ),
      });
    },

    // ── used by the worker side and the membership hook ──

    /** Applies a system action (timeouts, liveness, revocation). Undefined when the call is gone. */
    systemAct: async (orgId: string, callId: string, action: Action) => {
      try {
        return await act(orgId, callId, action, null);
      } catch (err) {
        if ((err as { extensions?: { code?: string } })?.extensions?.code === 'NOT_FOUND') return undefined;
        throw err;
      }
    },
    metrics,
    /** Stops the keep-alive timer. */
    close: async (): Promise<void> => {},
  };

  /**
   * Liveness, API side: every few seconds this instance marks the joined participants whose user
   * has a socket here as seen (one statement, whatever the number of live calls elsewhere). The
   * worker ends a participant nobody has seen for CALL_LIVENESS_GRACE_MS.
   */
  const keepAliveMs = Math.max(200, Math.min(config.reconcileMs, Math.floor(config.livenessGraceMs / 3)));
  let keeping = false;
  const keepAlive = setInterval(() => {
    const here = deps.presence.localUsers();
    if (keeping || here.size === 0) return;
    keeping = true;
    void repo
      .touchLiveParticipantsOf(db, [...here], new Date(Date.now() + config.livenessGraceMs))
      .catch((err) => logger.debug({ err }, 'call keep-alive failed'))
      .finally(() => (keeping = false));
  }, keepAliveMs);
  keepAlive.unref();
  service.close = async () => clearInterval(keepAlive);

  // a member removed from a conversation leaves its live calls, in the removal's own transaction
  deps.messaging.onMembersRemoved(async (tx, events, r) => {
    const applied: Applied[] = [];
    for (const { callId, userId } of await repo.liveCallsWith(tx, r.orgId, r.conversationId, r.userIds)) {
      const a = await actInTx(tx, events, r.orgId, callId, { type: 'revoke', userId }, null);
      if ('call' in a) applied.push(a);
    }
    return applied.length > 0 ? () => Promise.all(applied.map(afterTransition)).then(() => {}) : undefined;
  });
  return service;
}

class RetryStart extends Error {}

export type CallsService = ReturnType<typeof createCallsService>;
