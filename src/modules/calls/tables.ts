import { sql } from 'drizzle-orm';
import { boolean, index, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

export const CALL_STATES = ['ringing', 'accepted', 'in_progress', 'ended', 'rejected', 'missed', 'failed'] as const;
export type CallState = (typeof CALL_STATES)[number];
export const ACTIVE_CALL_STATES = ['ringing', 'accepted', 'in_progress'] as const;
export const PARTICIPANT_STATES = ['ringing', 'joined', 'declined', 'missed', 'left'] as const;
export type ParticipantState = (typeof PARTICIPANT_STATES)[number];
export const CALL_REASONS = [
  'hangup',
  'cancelled',
  'timeout',
  'declined',
  'busy',
  'glare_merged',
  'setup_timeout',
  'ice_failed',
  'media_failed',
  'connection_lost',
  'max_duration',
  'membership_revoked',
] as const;
export type CallReason = (typeof CALL_REASONS)[number];
export const CALL_MEDIA = ['audio', 'video'] as const;
export type CallMedia = (typeof CALL_MEDIA)[number];
export type CallKind = 'direct' | 'group';

/**
 * A call. The state machine (machine.ts) decides every change; each change is one transaction that
 * locks this row. Deadlines are database-clock instants the timers and the reconciler act on:
 * `ring_deadline` while somebody rings, `connect_deadline` while ACCEPTED without media, `max_end_at`
 * always. `pair_key` (1:1 calls) makes crossing calls between the same two people meet in one row.
 */
export const calls = pgTable(
  'calls',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    kind: text('kind', { enum: ['direct', 'group'] }).notNull(),
    media: text('media', { enum: CALL_MEDIA }).notNull(),
    state: text('state', { enum: CALL_STATES }).notNull(),
    reason: text('reason', { enum: CALL_REASONS }),
    initiatorId: text('initiator_id').notNull(),
    conversationId: uuid('conversation_id'),
    pairKey: text('pair_key'),
    clientCallId: text('client_call_id').notNull(),
    /** What the idempotency key stands for (conversation, callees, media). */
    requestHash: text('request_hash').notNull(),
    callbackOf: uuid('callback_of'),
    calleeBusy: boolean('callee_busy').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    ringDeadline: timestamp('ring_deadline', { withTimezone: true }),
    connectDeadline: timestamp('connect_deadline', { withTimezone: true }),
    maxEndAt: timestamp('max_end_at', { withTimezone: true }).notNull(),
    acceptedAt: timestamp('accepted_at', { withTimezone: true }),
    connectedAt: timestamp('connected_at', { withTimezone: true }),
    endedAt: timestamp('ended_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('calls_client_key_idx').on(t.orgId, t.initiatorId, t.clientCallId),
    uniqueIndex('calls_live_pair_idx')
      .on(t.orgId, t.pairKey)
      .where(sql`${t.kind} = 'direct' and ${t.state} in ('ringing', 'accepted', 'in_progress')`),
    index('calls_ring_due_idx').on(t.ringDeadline).where(sql`${t.ringDeadline} is not null`),
    index('calls_connect_due_idx').on(t.connectDeadline).where(sql`${t.connectDeadline} is not null`),
    index('calls_live_idx').on(t.maxEndAt).where(sql`${t.state} in ('accepted', 'in_progress')`),
    index('calls_conversation_idx').on(t.conversationId, t.createdAt),
  ],
);

/**
 * Everyone invited to a call, the caller included. `device_id` is the device that placed or
 * answered it (signals go only there). `alive_until` is the liveness deadline of a joined
 * participant: pushed CALL_LIVENESS_GRACE_MS ahead while an API instance holds one of their sockets
 * or they send `callHeartbeat`; past it, the worker ends their part (CONNECTION_LOST). A deadline
 * (not a "last seen" time), so the worker needs no config of the instances that set it.
 */
export const callParticipants = pgTable(
  'call_participants',
  {
    callId: uuid('call_id')
      .notNull()
      .references(() => calls.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    orgId: text('org_id').notNull(),
    role: text('role', { enum: ['caller', 'callee'] }).notNull(),
    state: text('state', { enum: PARTICIPANT_STATES }).notNull(),
    deviceId: text('device_id'),
    /** The WebSocket connection that placed or answered the call: the presence device shown IN_CALL. */
    presenceDevice: text('presence_device'),
    joinedAt: timestamp('joined_at', { withTimezone: true }),
    leftAt: timestamp('left_at', { withTimezone: true }),
    reason: text('reason', { enum: CALL_REASONS }),
    aliveUntil: timestamp('alive_until', { withTimezone: true }),
    /** The device's last quality report and a running summary (not per sample). */
    quality: jsonb('quality').$type<QualitySummary>(),
  },
  (t) => [primaryKey({ columns: [t.callId, t.userId] }), index('call_participants_user_idx').on(t.orgId, t.userId, t.callId)],
);

export interface QualitySummary {
  reports: number;
  last: {
    rttMs: number | null;
    jitterMs: number | null;
    packetLossPct: number | null;
    outboundKbps: number | null;
    candidatePairType: string | null;
    at: string;
  };
  maxRttMs: number | null;
  maxPacketLossPct: number | null;
}

export type CallRow = typeof calls.$inferSelect;
export type ParticipantRow = typeof callParticipants.$inferSelect;
