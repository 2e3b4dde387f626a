import { and, asc, desc, eq, inArray, isNotNull, lte, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { olderThanRow } from '../../db/keyset.js';
import { orgs, users } from '../identity/tables.js';
import type { CallSnapshot, ParticipantSnapshot } from './events.js';
import type { ParticipantChange } from './machine.js';
import {
  ACTIVE_CALL_STATES,
  type CallRow,
  type CallState,
  type ParticipantRow,
  type QualitySummary,
  callParticipants,
  calls,
} from './tables.js';

export type ParticipantWithUser = ParticipantRow & { name: string; userRole: string };

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function toSnapshot(c: CallRow, parts: readonly ParticipantWithUser[]): CallSnapshot {
  return {
    id: c.id,
    orgId: c.orgId,
    kind: c.kind,
    media: c.media,
    state: c.state,
    reason: c.reason,
    initiatorId: c.initiatorId,
    conversationId: c.conversationId,
    callbackOf: c.callbackOf,
    calleeBusy: c.calleeBusy,
    participants: parts.map(toParticipant),
    createdAt: c.createdAt.toISOString(),
    ringDeadline: iso(c.ringDeadline),
    acceptedAt: iso(c.acceptedAt),
    connectedAt: iso(c.connectedAt),
    endedAt: iso(c.endedAt),
  };
}

const toParticipant = (p: ParticipantWithUser): ParticipantSnapshot => ({
  user: { id: p.userId, name: p.name, role: p.userRole },
  role: p.role,
  state: p.state,
  deviceId: p.deviceId,
  joinedAt: iso(p.joinedAt),
  leftAt: iso(p.leftAt),
  reason: p.reason,
});

/** Inserts the call unless its idempotency key or (for 1:1) its live pair exists; undefined then. */
export async function insertCall(tx: Executor, row: typeof calls.$inferInsert): Promise<CallRow | undefined> {
  const [r] = await tx.insert(calls).values(row).onConflictDoNothing().returning();
  return r;
}

export async function insertParticipants(tx: Executor, rows: Array<typeof callParticipants.$inferInsert>): Promise<void> {
  await tx.insert(callParticipants).values(rows);
}

export async function findCall(db: Executor, orgId: string, id: string, lock = false): Promise<CallRow | undefined> {
  const q = db
    .select()
    .from(calls)
    .where(and(eq(calls.orgId, orgId), eq(calls.id, id)));
  const [r] = lock ? await q.for('update') : await q;
  return r;
}

export async function findByClientKey(db: Executor, orgId: string, initiatorId: string, clientCallId: string) {
  const [r] = await db
    .select()
    .from(calls)
    .where(and(eq(calls.orgId, orgId), eq(calls.initiatorId, initiatorId), eq(calls.clientCallId, clientCallId)));
  return r;
}

/** The live 1:1 call between a pair, locked. */
export async function findLivePair(tx: Executor, orgId: string, pairKey: string): Promise<CallRow | undefined> {
  const [r] = await tx
    .select()
    .from(calls)
    .where(and(eq(calls.orgId, orgId), eq(calls.pairKey, pairKey), eq(calls.kind, 'direct'), inArray(calls.state, [...ACTIVE_CALL_STATES])))
    .for('update');
  return r;
}

const participantColumns = {
  callId: callParticipants.callId,
  userId: callParticipants.userId,
  orgId: callParticipants.orgId,
  role: callParticipants.role,
  state: callParticipants.state,
  deviceId: callParticipants.deviceId,
  presenceDevice: callParticipants.presenceDevice,
  joinedAt: callParticipants.joinedAt,
  leftAt: callParticipants.leftAt,
  reason: callParticipants.reason,
  aliveUntil: callParticipants.aliveUntil,
  quality: callParticipants.quality,
  name: users.name,
  userRole: users.role,
};

/** Participants of calls with their names, callers first, then by user id (a stable order). */
export async function participantsOf(db: Executor, orgId: string, callIds: readonly string[]): Promise<Map<string, ParticipantWithUser[]>> {
  const out = new Map<string, ParticipantWithUser[]>(callIds.map((id) => [id, []]));
  if (callIds.length === 0) return out;
  const rows = await db
    .select(participantColumns)
    .from(callParticipants)
    .innerJoin(users, eq(users.id, callParticipants.userId))
    .where(and(eq(callParticipants.orgId, orgId), inArray(callParticipants.callId, [...callIds])))
    .orderBy(desc(callParticipants.role), asc(callParticipants.userId));
  for (const r of rows) out.get(r.callId)?.push(r);
  return out;
}

export async function snapshotsOf(db: Executor, orgId: string, rows: readonly CallRow[]): Promise<CallSnapshot[]> {
  const parts = await participantsOf(
    db,
    orgId,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toSnapshot(r, parts.get(r.id) ?? []));
}

export async function updateCall(tx: Executor, id: string, set: Partial<typeof calls.$inferInsert>): Promise<CallRow> {
  const [r] = await tx.update(calls).set(set).where(eq(calls.id, id)).returning();
  return r as CallRow;
}

/** Applies participant changes decided by the machine; joined/left times from `now`. */
export async function applyParticipantChanges(
  tx: Executor,
  callId: string,
  changes: readonly ParticipantChange[],
  now: Date,
  aliveUntil: Date,
): Promise<void> {
  for (const c of changes) {
    await tx
      .update(callParticipants)
      .set({
        state: c.state,
        reason: c.reason,
        ...(c.deviceId ? { deviceId: c.deviceId } : {}),
        ...(c.presenceDevice ? { presenceDevice: c.presenceDevice } : {}),
        ...(c.state === 'joined' ? { joinedAt: now, aliveUntil } : {}),
        ...(c.state === 'left' ? { leftAt: now } : {}),
      })
      .where(and(eq(callParticipants.callId, callId), eq(callParticipants.userId, c.userId)));
  }
}

/** The viewer's calls in these states, newest first. */
export async function callsOfUser(
  db: Executor,
  orgId: string,
  userId: string,
  opts: { states?: readonly CallState[]; limit: number; afterId?: string; conversationId?: string },
): Promise<CallRow[]> {
  const rows = await db
    .select({ call: calls })
    .from(calls)
    .innerJoin(callParticipants, and(eq(callParticipants.callId, calls.id), eq(callParticipants.userId, userId)))
    .where(
      and(
        eq(calls.orgId, orgId),
        eq(callParticipants.orgId, orgId),
        opts.states && opts.states.length > 0 ? inArray(calls.state, [...opts.states]) : undefined,
        opts.conversationId ? eq(calls.conversationId, opts.conversationId) : undefined,
        olderThanRow(calls, orgId, opts.afterId),
      ),
    )
    .orderBy(desc(calls.createdAt), desc(calls.id))
    .limit(opts.limit);
  return rows.map((r) => r.call);
}

/** Of `userIds`, those joined in another live call (busy). */
export async function busyUsers(db: Executor, orgId: string, userIds: readonly string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .select({ userId: callParticipants.userId })
    .from(callParticipants)
    .innerJoin(calls, eq(calls.id, callParticipants.callId))
    .where(
      and(
        eq(callParticipants.orgId, orgId),
        inArray(callParticipants.userId, [...userIds]),
        eq(callParticipants.state, 'joined'),
        inArray(calls.state, ['accepted', 'in_progress']),
      ),
    );
  return new Set(rows.map((r) => r.userId));
}

/** Calls with somebody ringing past the deadline (the ring reconciler). */
export async function dueRings(db: Executor, before: Date, limit: number) {
  return db
    .select({ callId: calls.id, orgId: calls.orgId })
    .from(calls)
    .where(and(isNotNull(calls.ringDeadline), lte(calls.ringDeadline, before)))
    .orderBy(asc(calls.ringDeadline))
    .limit(limit);
}

/** Accepted calls past their connect deadline. */
export async function dueConnects(db: Executor, before: Date, limit: number) {
  return db
    .select({ callId: calls.id, orgId: calls.orgId })
    .from(calls)
    .where(and(isNotNull(calls.connectDeadline), lte(calls.connectDeadline, before)))
    .orderBy(asc(calls.connectDeadline))
    .limit(limit);
}

/** Live (accepted or in progress) calls with their joined participants' devices, for the liveness check. */
export async function liveJoined(db: Executor, limit: number) {
  return db
    .select({
      callId: calls.id,
      orgId: calls.orgId,
      maxEndAt: calls.maxEndAt,
      userId: callParticipants.userId,
      deviceId: callParticipants.deviceId,
      aliveUntil: callParticipants.aliveUntil,
    })
    .from(calls)
    .innerJoin(callParticipants, and(eq(callParticipants.callId, calls.id), eq(callParticipants.state, 'joined')))
    .where(inArray(calls.state, ['accepted', 'in_progress']))
    .orderBy(asc(calls.maxEndAt))
    .limit(limit);
}

/**
 * Pushes joined participants' liveness deadline to `aliveUntil` (one statement). Rows are locked in
 * key order and rows a transition holds are skipped (they are touched next time): the keep-alive
 * never waits for, or deadlocks with, a call's state change.
 */
export async function touchParticipants(
  db: Executor,
  seen: ReadonlyArray<{ callId: string; userId: string }>,
  aliveUntil: Date,
): Promise<void> {
  if (seen.length === 0) return;
  const keys = sql.join(
    seen.map((x) => sql`(${x.callId}::uuid, ${x.userId})`),
    sql`, `,
  );
  await db.execute(sql`
    update ${callParticipants} p set alive_until = ${aliveUntil.toISOString()}::timestamptz
    from (select call_id, user_id from ${callParticipants}
          where state = 'joined' and (call_id, user_id) in (${keys})
          order by call_id, user_id for update skip locked) s
    where p.call_id = s.call_id and p.user_id = s.user_id`);
}

/**
 * The API keep-alive in one statement: pushes the liveness deadline of every joined participant of
 * a live call whose user is among `userIds` (the users with a socket on this instance). Same
 * locking as {@link touchParticipants}; the user list travels as one JSON parameter.
 */
export async function touchLiveParticipantsOf(db: Executor, userIds: readonly string[], aliveUntil: Date): Promise<void> {
  if (userIds.length === 0) return;
  await db.execute(sql`
    update ${callParticipants} p set alive_until = ${aliveUntil.toISOString()}::timestamptz
    from (select cp.call_id, cp.user_id from ${callParticipants} cp join ${calls} c on c.id = cp.call_id
          where c.state in ('accepted', 'in_progress') and cp.state = 'joined'
            and cp.user_id in (select jsonb_array_elements_text(${JSON.stringify(userIds)}::jsonb))
          order by cp.call_id, cp.user_id for update of cp skip locked) s
    where p.call_id = s.call_id and p.user_id = s.user_id`);
}

/** Live calls of a conversation that any of `userIds` takes part in (still ringing or joined). */
export async function liveCallsWith(tx: Executor, orgId: string, conversationId: string, userIds: readonly string[]) {
  if (userIds.length === 0) return [];
  return tx
    .selectDistinct({ callId: calls.id, userId: callParticipants.userId })
    .from(calls)
    .innerJoin(callParticipants, eq(callParticipants.callId, calls.id))
    .where(
      and(
        eq(calls.orgId, orgId),
        eq(calls.conversationId, conversationId),
        inArray(calls.state, [...ACTIVE_CALL_STATES]),
        inArray(callParticipants.userId, [...userIds]),
        inArray(callParticipants.state, ['ringing', 'joined']),
      ),
    );
}

/** What a signal needs to know, in one query: the call's state and both parties' rows. */
export async function signalRoute(db: Executor, orgId: string, callId: string, fromUserId: string, toUserId: string) {
  return db
    .select({ state: calls.state, userId: callParticipants.userId, pstate: callParticipants.state, deviceId: callParticipants.deviceId })
    .from(calls)
    .innerJoin(callParticipants, eq(callParticipants.callId, calls.id))
    .where(and(eq(calls.orgId, orgId), eq(calls.id, callId), inArray(callParticipants.userId, [fromUserId, toUserId])));
}

export async function saveQuality(db: Executor, callId: string, userId: string, quality: QualitySummary): Promise<void> {
  await db
    .update(callParticipants)
    .set({ quality })
    .where(and(eq(callParticipants.callId, callId), eq(callParticipants.userId, userId)));
}

/** Counts of live calls by state (metrics). */
export async function liveCounts(db: Executor): Promise<Array<{ state: CallState; n: number }>> {
  return db
    .select({ state: calls.state, n: sql<number>`count(*)::int` })
    .from(calls)
    .where(inArray(calls.state, [...ACTIVE_CALL_STATES]))
    .groupBy(calls.state);
}

export async function orgBusyPolicy(db: Executor, orgId: string): Promise<'ring' | 'reject_busy' | null> {
  const [r] = await db.select({ p: orgs.callBusyPolicy }).from(orgs).where(eq(orgs.id, orgId));
  return r?.p ?? null;
}

export async function setOrgBusyPolicy(db: Executor, orgId: string, policy: 'ring' | 'reject_busy'): Promise<void> {
  await db.update(orgs).set({ callBusyPolicy: policy }).where(eq(orgs.id, orgId));
}
