import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';
import { StreamEvent, type StreamOpener, streamResolvers } from '../../graphql/stream-event.js';
import { User } from '../identity/schema.js';
import { Conversation } from '../messaging/schema.js';
import { type CallEventRoot, type CallSnapshot, type ParticipantSnapshot, ringRemainingMs } from './events.js';
import type { QualitySummary } from './tables.js';

const CallStateEnum = builder.enumType('CallState', {
  description:
    'Where a call is. RINGING → ACCEPTED (a callee answered) → IN_PROGRESS (the first SDP answer was relayed) → ENDED; or REJECTED, MISSED or FAILED. The last four are final.',
  values: {
    RINGING: { value: 'ringing', description: 'Ringing the callees’ devices until `ringDeadline`.' },
    ACCEPTED: { value: 'accepted', description: 'A callee answered; the caller sends the OFFER to the answering device.' },
    IN_PROGRESS: { value: 'in_progress', description: 'Media is being set up or flowing (an SDP answer was relayed).' },
    ENDED: { value: 'ended', description: 'A connected call ended (see `reason`). Final.' },
    REJECTED: { value: 'rejected', description: 'Every callee declined, or the callee was busy under the REJECT_BUSY policy. Final.' },
    MISSED: { value: 'missed', description: 'Nobody answered before the deadline, or the caller cancelled while it rang. Final.' },
    FAILED: {
      value: 'failed',
      description: 'Accepted but never connected (no SDP answer in time), or a client reported ICE or media failure. Final.',
    },
  } as const,
});

const CallMediaEnum = builder.enumType('CallMedia', {
  description: 'The media a call was started with (clients may still mute).',
  values: { AUDIO: { value: 'audio', description: 'Audio only.' }, VIDEO: { value: 'video', description: 'Audio and video.' } } as const,
});

const CallKindEnum = builder.enumType('CallKind', {
  description: 'One-to-one or group.',
  values: {
    DIRECT: { value: 'direct', description: 'Two people. Two crossing calls between them merge into one.' },
    GROUP: { value: 'group', description: 'Several callees; a mesh of up to CALL_MESH_MAX joined participants.' },
  } as const,
});

const ParticipantStateEnum = builder.enumType('CallParticipantState', {
  description: 'Where one participant is in a call.',
  values: {
    RINGING: { value: 'ringing', description: 'Their devices ring.' },
    JOINED: { value: 'joined', description: 'In the call, on `deviceId` (the caller starts JOINED).' },
    DECLINED: { value: 'declined', description: 'They declined (or were busy under REJECT_BUSY).' },
    MISSED: { value: 'missed', description: 'They never answered (timeout, or the caller cancelled).' },
    LEFT: { value: 'left', description: 'They were in the call and left it.' },
  } as const,
});

const CallRoleEnum = builder.enumType('CallRole', {
  description: 'Caller or callee.',
  values: {
    CALLER: { value: 'caller', description: 'Started the call.' },
    CALLEE: { value: 'callee', description: 'Was called.' },
  } as const,
});

const SignalKindEnum = builder.enumType('CallSignalKind', {
  description: 'What a signal carries.',
  values: {
    OFFER: { value: 'offer', description: 'An SDP offer (RTCSessionDescriptionInit); during IN_PROGRESS, a renegotiation or ICE restart.' },
    ANSWER: { value: 'answer', description: 'An SDP answer; the first one relayed marks the call IN_PROGRESS.' },
    ICE_CANDIDATE: {
      value: 'ice_candidate',
      description: 'A trickled ICE candidate (RTCIceCandidateInit); `{"candidate": ""}` means end of candidates.',
    },
  } as const,
});

const ReasonEnum = builder.enumType('CallEndReason', {
  description: 'Why a call or a participant is in its current state.',
  values: {
    HANGUP: { value: 'hangup', description: 'A participant ended a connected call.' },
    CANCELLED: { value: 'cancelled', description: 'The caller ended it while it rang (the callees get a missed call).' },
    TIMEOUT: { value: 'timeout', description: 'Nobody answered before `ringDeadline`.' },
    DECLINED: { value: 'declined', description: 'A callee declined.' },
    BUSY: { value: 'busy', description: 'The callee was in another call and the organisation’s policy is REJECT_BUSY.' },
    GLARE_MERGED: {
      value: 'glare_merged',
      description: 'Two crossing calls between the same people were merged into this one (not final).',
    },
    SETUP_TIMEOUT: { value: 'setup_timeout', description: 'Accepted, but no SDP answer was relayed within CALL_CONNECT_TIMEOUT_MS.' },
    ICE_FAILED: { value: 'ice_failed', description: 'A client reported that no media path could be established.' },
    MEDIA_FAILED: { value: 'media_failed', description: 'A client could not capture or play media.' },
    CONNECTION_LOST: { value: 'connection_lost', description: 'No device of a participant was connected for CALL_LIVENESS_GRACE_MS.' },
    MAX_DURATION: { value: 'max_duration', description: 'The call reached CALL_MAX_DURATION_MS.' },
    MEMBERSHIP_REVOKED: { value: 'membership_revoked', description: 'A participant was removed from the conversation.' },
  } as const,
});

const CandidateTypeEnum = builder.enumType('IceCandidateType', {
  description: 'The type of the ICE candidate pair in use (RELAY means media goes through TURN).',
  values: {
    HOST: { value: 'host', description: 'Direct, local address.' },
    SRFLX: { value: 'srflx', description: 'Server-reflexive (through NAT, found by STUN).' },
    PRFLX: { value: 'prflx', description: 'Peer-reflexive.' },
    RELAY: { value: 'relay', description: 'Relayed by a TURN server.' },
  } as const,
});

const BusyPolicyEnum = builder.enumType('CallBusyPolicy', {
  description: 'What happens when someone calls a person who is already in another call (1:1 calls).',
  values: {
    RING: { value: 'ring', description: 'Ring anyway, with `calleeBusy: true` so their app can show call waiting.' },
    REJECT_BUSY: { value: 'reject_busy', description: 'Reject at once with reason BUSY (no ring, no missed call).' },
  } as const,
});

const Quality = builder.objectRef<QualitySummary>('CallQuality').implement({
  description: 'A device’s call quality: its last report and the worst values reported.',
  fields: (t) => ({
    reports: t.exposeInt('reports', { description: 'How many reports were received.' }),
    rttMs: t.float({ nullable: true, description: 'Last round-trip time (ms).', resolve: (q) => q.last.rttMs }),
    jitterMs: t.float({ nullable: true, description: 'Last jitter (ms).', resolve: (q) => q.last.jitterMs }),
    packetLossPct: t.float({ nullable: true, description: 'Last packet loss (%).', resolve: (q) => q.last.packetLossPct }),
    outboundKbps: t.float({ nullable: true, description: 'Last outbound bitrate (kbit/s).', resolve: (q) => q.last.outboundKbps }),
    candidatePairType: t.field({
      type: CandidateTypeEnum,
      nullable: true,
      description: 'Last candidate-pair type.',
      resolve: (q) => q.last.candidatePairType as 'host' | null,
    }),
    maxRttMs: t.exposeFloat('maxRttMs', { nullable: true, description: 'Worst round-trip time reported (ms).' }),
    maxPacketLossPct: t.exposeFloat('maxPacketLossPct', { nullable: true, description: 'Worst packet loss reported (%).' }),
    reportedAt: t.field({ type: 'DateTime', description: 'When the last report arrived.', resolve: (q) => q.last.at }),
  }),
});

const Participant = builder.objectRef<ParticipantSnapshot & { callId: string }>('CallParticipant').implement({
  description: 'Someone invited to a call (the caller included) and where they are in it.',
  fields: (t) => ({
    user: t.field({ type: User, description: 'The participant.', resolve: (p) => p.user }),
    role: t.field({ type: CallRoleEnum, description: 'Caller or callee.', resolve: (p) => p.role }),
    state: t.field({ type: ParticipantStateEnum, description: 'Where they are in the call.', resolve: (p) => p.state }),
    deviceId: t.exposeString('deviceId', {
      nullable: true,
      description: 'The device that placed or answered the call: signals to this participant go only there.',
    }),
    joinedAt: t.field({ type: 'DateTime', nullable: true, description: 'When they joined.', resolve: (p) => p.joinedAt }),
    leftAt: t.field({ type: 'DateTime', nullable: true, description: 'When they left.', resolve: (p) => p.leftAt }),
    reason: t.field({
      type: ReasonEnum,
      nullable: true,
      description: 'Why they declined, missed or left.',
      resolve: (p) => p.reason,
    }),
    quality: t.field({
      type: Quality,
      nullable: true,
      description: 'Their device’s reported call quality (visible to themselves and admins).',
      extensions: { viewerDependent: true },
      resolve: (p, _a, ctx) => ctx.services.calls.qualityOf(requireViewer(ctx), p.callId, p.user.id),
    }),
  }),
});

const withCall = (c: CallSnapshot) => c.participants.map((p) => ({ ...p, callId: c.id }));

export const Call = builder.objectRef<CallSnapshot>('Call').implement({
  description:
    'A 1:1 or group WebRTC call. The server is authoritative: its state, deadlines and who answered on which device come from here, not from clients.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Call id.' }),
    kind: t.field({ type: CallKindEnum, description: 'DIRECT (two people) or GROUP.', resolve: (c) => c.kind }),
    media: t.field({ type: CallMediaEnum, description: 'Requested media.', resolve: (c) => c.media }),
    state: t.field({
      type: CallStateEnum,
      description: 'Current state (as of this event, or now for queries and IncomingCall).',
      resolve: (c) => c.state,
    }),
    reason: t.field({ type: ReasonEnum, nullable: true, description: 'Why it is in this state, when relevant.', resolve: (c) => c.reason }),
    initiator: t.field({
      type: User,
      description: 'Who started the call.',
      resolve: (c) => c.participants.find((p) => p.role === 'caller')?.user ?? { id: c.initiatorId, name: '', role: 'patient' },
    }),
    conversation: t.field({
      type: Conversation,
      nullable: true,
      description: 'The conversation it was started from, if any (null if you are no longer a member).',
      extensions: { viewerDependent: true },
      resolve: (c, _a, ctx) =>
        c.conversationId ? ctx.services.messaging.getConversation(requireViewer(ctx), c.conversationId, false) : null,
    }),
    participants: t.field({ type: [Participant], description: 'Everyone invited, the caller first.', resolve: withCall }),
    viewerParticipant: t.field({
      type: Participant,
      nullable: true,
      description: 'Your own entry (null for an admin looking at someone else’s call).',
      extensions: { viewerDependent: true },
      resolve: (c, _a, ctx) => withCall(c).find((p) => p.user.id === requireViewer(ctx).userId) ?? null,
    }),
    ringDeadline: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When ringing stops (server clock); null once nobody rings.',
      resolve: (c) => c.ringDeadline,
    }),
    ringRemainingMs: t.int({
      description:
        'Milliseconds of ringing left for YOU when this was rendered (server clock): above 0 only while you are a callee still being rung. Ring if and only if this is above 0.',
      extensions: { viewerDependent: true },
      resolve: (c, _a, ctx) => {
        const me = c.participants.find((p) => p.user.id === requireViewer(ctx).userId);
        return me?.state === 'ringing' ? ringRemainingMs(c) : 0;
      },
    }),
    calleeBusy: t.exposeBoolean('calleeBusy', { description: 'Whether a callee was in another call when this one rang.' }),
    callbackOf: t.exposeID('callbackOf', { nullable: true, description: 'The missed call this call returns, if it is a call back.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was started.', resolve: (c) => c.createdAt }),
    acceptedAt: t.field({ type: 'DateTime', nullable: true, description: 'When the first callee answered.', resolve: (c) => c.acceptedAt }),
    connectedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the first SDP answer was relayed (IN_PROGRESS).',
      resolve: (c) => c.connectedAt,
    }),
    endedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it reached a final state.', resolve: (c) => c.endedAt }),
    durationSeconds: t.int({
      nullable: true,
      description: 'Seconds from connectedAt to endedAt (null unless it connected and ended).',
      resolve: (c) => (c.connectedAt && c.endedAt ? Math.round((Date.parse(c.endedAt) - Date.parse(c.connectedAt)) / 1000) : null),
    }),
  }),
});

type R<K extends CallEventRoot['kind']> = Extract<CallEventRoot, { kind: K }>;
const is = (k: string) => (v: unknown) => (v as CallEventRoot).kind === k;

const AnsweredBy = builder.objectRef<{ userId: string; deviceId: string }>('CallAnswer').implement({
  description: 'Who answered and on which device. If `deviceId` is not yours, the call was answered elsewhere: stop ringing.',
  fields: (t) => ({
    userId: t.exposeID('userId', { description: 'Who answered.' }),
    deviceId: t.exposeString('deviceId', { description: 'The device that answered.' }),
  }),
});

const IncomingCall = builder.objectRef<R<'IncomingCall'>>('IncomingCall').implement({
  description:
    'You are being called (durable: replayed after a reconnect). `call` is rendered with its CURRENT state, so a device that comes back late sees the call is over and does not ring.',
  interfaces: [StreamEvent],
  isTypeOf: is('IncomingCall'),
  fields: (t) => ({
    call: t.field({
      type: Call,
      description: 'The call, as it is now.',
      resolve: (e, _a, ctx) => ctx.services.calls.current(requireViewer(ctx), e.call),
    }),
  }),
});

const CallStateChanged = builder.objectRef<R<'CallStateChanged'>>('CallStateChanged').implement({
  description:
    'A call you take part in changed (durable). Sent to every participant on every transition, including participant changes in group calls (then `from` equals `to`).',
  interfaces: [StreamEvent],
  isTypeOf: is('CallStateChanged'),
  fields: (t) => ({
    call: t.field({ type: Call, description: 'The call as of this change.', resolve: (e) => e.call }),
    from: t.field({
      type: CallStateEnum,
      nullable: true,
      description: 'State before (null for the caller’s first event).',
      resolve: (e) => e.from,
    }),
    to: t.field({ type: CallStateEnum, description: 'State after.', resolve: (e) => e.to }),
    reason: t.field({ type: ReasonEnum, nullable: true, description: 'Why.', resolve: (e) => e.reason }),
    actor: t.field({
      type: User,
      nullable: true,
      description: 'Who caused it; null for the system (timeouts, liveness).',
      resolve: (e) => (e.actorId ? (e.call.participants.find((p) => p.user.id === e.actorId)?.user ?? null) : null),
    }),
    answeredBy: t.field({
      type: AnsweredBy,
      nullable: true,
      description: 'Set when a callee answered: compare `deviceId` with your own ("answered elsewhere").',
      resolve: (e) => e.answeredBy,
    }),
  }),
});

const CallSignal = builder.objectRef<R<'CallSignal'>>('CallSignal').implement({
  description:
    'SDP or an ICE candidate from another participant, delivered only to the device it is addressed to. Ephemeral: never stored, never replayed, no cursor. Order by `seq` per sender.',
  isTypeOf: is('CallSignal'),
  fields: (t) => ({
    callId: t.exposeID('callId', { description: 'The call.' }),
    sender: t.field({
      type: User,
      description: 'Who sent it.',
      resolve: (s) => ({ id: s.fromUserId, name: s.fromUserName, role: s.fromUserRole }),
    }),
    fromDeviceId: t.exposeString('fromDeviceId', { description: 'The sending device (address your replies to it).' }),
    toDeviceId: t.exposeString('toDeviceId', { description: 'Your device it was addressed to.' }),
    kind: t.field({ type: SignalKindEnum, description: 'OFFER, ANSWER or ICE_CANDIDATE.', resolve: (s) => s.signalKind }),
    payload: t.field({
      type: 'JSON',
      description: 'RTCSessionDescriptionInit (OFFER, ANSWER) or RTCIceCandidateInit (ICE_CANDIDATE).',
      resolve: (s) => s.payload,
    }),
    seq: t.exposeInt('seq', {
      description:
        'Strictly increasing per sending device and call: buffer candidates that arrive before the description and apply in `seq` order.',
    }),
    at: t.field({ type: 'DateTime', description: 'When the server relayed it.', resolve: (s) => s.at }),
  }),
});

const ActiveCall = builder.objectRef<R<'ActiveCall'>>('ActiveCall').implement({
  description:
    'A live call you take part in, sent first when you subscribe without `after` (an app opened from a push rings without a cursor). Not durable: no cursor.',
  isTypeOf: is('ActiveCall'),
  fields: (t) => ({ call: t.field({ type: Call, description: 'The call, as it is now.', resolve: (e) => e.call }) }),
});

const CallEvent = builder.unionType('CallEvent', {
  description: 'Events of your calls: ActiveCall (initial state), IncomingCall, CallStateChanged (durable) and CallSignal (ephemeral).',
  types: [ActiveCall, IncomingCall, CallStateChanged, CallSignal],
});

const StartCallInput = builder.inputType('StartCallInput', {
  description: 'A new call: give a conversation (its other members ring), or callees you share a conversation with.',
  fields: (t) => ({
    conversationId: t.id({
      required: false,
      description: 'Ring the other members of this conversation (or, with `calleeIds`, those of them).',
    }),
    calleeIds: t.idList({ required: false, description: 'Who to ring (up to CALL_MAX_CALLEES; one callee makes a DIRECT call).' }),
    media: t.field({ type: CallMediaEnum, description: 'AUDIO or VIDEO.' }),
    clientCallId: t.string({
      required: false,
      description:
        'Idempotency key (1-128 characters): repeating it returns the same call; reusing it for a different call is a CONFLICT. Apps should always pass one (a retried start must not ring twice); without it every start is a new call.',
    }),
    deviceId: t.string({
      required: false,
      description: 'Your device (1-255 of [0-9A-Za-z._~-]); pass a stable id per app install. Default: this WebSocket connection.',
    }),
    callbackOf: t.id({ required: false, description: 'The missed call you are returning (from the MISSED_CALL notification’s data).' }),
  }),
});

const CallSignalInput = builder.inputType('CallSignalInput', {
  description: 'A signal for another joined participant of an ACCEPTED or IN_PROGRESS call.',
  fields: (t) => ({
    callId: t.id({ description: 'The call.' }),
    toUserId: t.id({ description: 'The participant to signal.' }),
    toDeviceId: t.string({ required: false, description: 'Their device; default (and the only one allowed): the device that joined.' }),
    fromDeviceId: t.string({ required: false, description: 'Your device; default: the device you joined with.' }),
    kind: t.field({ type: SignalKindEnum, description: 'OFFER, ANSWER or ICE_CANDIDATE.' }),
    payload: t.field({ type: 'JSON', description: 'RTCSessionDescriptionInit or RTCIceCandidateInit, at most CALL_SIGNAL_MAX_BYTES.' }),
  }),
});

const CallQualityInput = builder.inputType('CallQualityInput', {
  description: 'A quality report from your device (e.g. from RTCPeerConnection.getStats every few seconds).',
  fields: (t) => ({
    callId: t.id({ description: 'The call.' }),
    deviceId: t.string({ required: false, description: 'Your device.' }),
    rttMs: t.float({ required: false, description: 'Round-trip time (ms).' }),
    jitterMs: t.float({ required: false, description: 'Jitter (ms).' }),
    packetLossPct: t.float({ required: false, description: 'Packet loss, 0-100.' }),
    outboundKbps: t.float({ required: false, description: 'Outbound bitrate (kbit/s).' }),
    candidatePairType: t.field({ type: CandidateTypeEnum, required: false, description: 'Type of the candidate pair in use.' }),
  }),
});

const IceServer = builder.objectRef<{ urls: string[]; username: string | null; credential: string | null }>('IceServer').implement({
  description: 'One entry of RTCConfiguration.iceServers.',
  fields: (t) => ({
    urls: t.exposeStringList('urls', { description: 'stun:, turn: or turns: URIs.' }),
    username: t.exposeString('username', { nullable: true, description: 'TURN username (`<expiry>:<userId>`), null for STUN.' }),
    credential: t.exposeString('credential', { nullable: true, description: 'TURN password, valid until the expiry in the username.' }),
  }),
});

const CallIceServers = builder
  .objectRef<{
    iceServers: Array<{ urls: string[]; username: string | null; credential: string | null }>;
    ttlSeconds: number;
    turnConfigured: boolean;
  }>('CallIceServers')
  .implement({
    description: 'What to pass to RTCPeerConnection. Fetch again before `ttlSeconds` pass.',
    fields: (t) => ({
      iceServers: t.field({
        type: [IceServer],
        description: 'STUN and TURN servers (empty when none is configured).',
        resolve: (s) => s.iceServers,
      }),
      ttlSeconds: t.exposeInt('ttlSeconds', { description: 'How long the TURN credentials are valid.' }),
      turnConfigured: t.exposeBoolean('turnConfigured', {
        description: 'Whether this deployment has a TURN server (without one, calls across strict NATs fail).',
      }),
    }),
  });

builder.queryFields((t) => ({
  call: t.field({
    type: Call,
    nullable: true,
    description: 'A call you take part in (admins: any call of the organisation); null otherwise.',
    args: { id: t.arg.id({ description: 'Call id.' }) },
    resolve: (_r, a, ctx) => ctx.services.calls.call(requireViewer(ctx), String(a.id)),
  }),
  activeCalls: t.field({
    type: [Call],
    description: 'Your live calls (RINGING, ACCEPTED, IN_PROGRESS), newest first.',
    resolve: (_r, _a, ctx) => ctx.services.calls.activeCalls(requireViewer(ctx)),
  }),
  callHistory: t.connection(
    {
      type: Call,
      description: 'Your calls, newest first; optionally of one conversation and in some states. Pages forward only (`first`/`after`).',
      args: {
        conversationId: t.arg.id({ required: false, description: 'Only calls of this conversation (you must be a member).' }),
        states: t.arg({ type: [CallStateEnum], required: false, description: 'Only calls in these states (e.g. MISSED).' }),
      },
      resolve: (_r, args, ctx) =>
        ctx.services.calls.callHistory(requireViewer(ctx), {
          ...args,
          conversationId: args.conversationId == null ? null : String(args.conversationId),
        }),
    },
    { name: 'CallConnection', description: 'A page of calls.' },
    { name: 'CallEdge', description: 'A call and its cursor.' },
  ),
  callIceServers: t.field({
    type: CallIceServers,
    description: 'STUN/TURN servers with time-limited TURN credentials (coturn `use-auth-secret`).',
    resolve: (_r, _a, ctx) => ctx.services.calls.callIceServers(requireViewer(ctx)),
  }),
  callBusyPolicy: t.field({
    type: BusyPolicyEnum,
    description: 'What a 1:1 call to someone already in a call does in your organisation.',
    resolve: (_r, _a, ctx) => ctx.services.calls.callBusyPolicy(requireViewer(ctx)),
  }),
}));

builder.mutationFields((t) => ({
  startCall: t.field({
    type: Call,
    description:
      'Starts a call: the callees’ devices ring (IncomingCall) for CALL_RING_TIMEOUT_MS, then it is MISSED and they get a MISSED_CALL notification. If the callee is calling you right now, their call is answered instead (reason GLARE_MERGED).',
    args: { input: t.arg({ type: StartCallInput, description: 'The call.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.calls.startCall(requireViewer(ctx), input, ctx.socketId),
  }),
  acceptCall: t.field({
    type: Call,
    description:
      'Answers a ringing call on this device. The first answer wins: another device gets CONFLICT (reason ANSWERED_ELSEWHERE). Repeating it on the same device returns the call.',
    args: {
      id: t.arg.id({ description: 'Call id.' }),
      deviceId: t.arg.string({ required: false, description: 'Your device; default: this WebSocket connection.' }),
    },
    resolve: (_r, a, ctx) => ctx.services.calls.acceptCall(requireViewer(ctx), String(a.id), a.deviceId, ctx.socketId),
  }),
  rejectCall: t.field({
    type: Call,
    description: 'Declines a ringing call (no missed-call notification).',
    args: { id: t.arg.id({ description: 'Call id.' }) },
    resolve: (_r, a, ctx) => ctx.services.calls.rejectCall(requireViewer(ctx), String(a.id)),
  }),
  endCall: t.field({
    type: Call,
    description:
      'Hangs up. The caller ending a ringing call cancels it (the callees get a missed call); a ringing callee declines; ending an ended call returns it.',
    args: {
      id: t.arg.id({ description: 'Call id.' }),
      reason: t.arg({
        type: ReasonEnum,
        required: false,
        description: 'HANGUP (default), ICE_FAILED or MEDIA_FAILED (the call is FAILED).',
      }),
    },
    resolve: (_r, a, ctx) => ctx.services.calls.endCall(requireViewer(ctx), String(a.id), a.reason),
  }),
  sendCallSignal: t.field({
    type: 'Boolean',
    description:
      'Relays SDP or an ICE candidate to another joined participant’s answering device (never stored). CONFLICT (CALL_NOT_ACCEPTED) while ringing: send the OFFER once ACCEPTED. Rate-limited per device.',
    args: { input: t.arg({ type: CallSignalInput, description: 'The signal.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.calls.sendCallSignal(requireViewer(ctx), input),
  }),
  reportCallQuality: t.field({
    type: 'Boolean',
    description: 'Records your device’s call quality (last report and worst values are kept, not every sample).',
    args: { input: t.arg({ type: CallQualityInput, description: 'The report.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.calls.reportCallQuality(requireViewer(ctx), input),
  }),
  callHeartbeat: t.field({
    type: 'Boolean',
    description: 'Keeps your part of a call alive from a client without a WebSocket (true while you are joined).',
    args: { id: t.arg.id({ description: 'Call id.' }) },
    resolve: (_r, a, ctx) => ctx.services.calls.callHeartbeat(requireViewer(ctx), String(a.id)),
  }),
  setCallBusyPolicy: t.field({
    type: BusyPolicyEnum,
    description: 'Sets what a 1:1 call to someone already in a call does in your organisation (admins).',
    args: { policy: t.arg({ type: BusyPolicyEnum, description: 'RING or REJECT_BUSY.' }) },
    resolve: (_r, a, ctx) => ctx.services.calls.setCallBusyPolicy(requireViewer(ctx), a.policy),
  }),
}));

const open: StreamOpener = (args, ctx) =>
  ctx.services.calls.openEvents(requireViewer(ctx), args.after as string | null, args.deviceId as string | null, ctx.socketId);

builder.subscriptionField('callEvents', (t) =>
  t.field({
    type: CallEvent,
    description:
      'Your calls: first your live calls (ActiveCall, when subscribing without `after`), then IncomingCall and CallStateChanged (durable, resumable with `after`) and CallSignal for this device (ephemeral, never replayed).',
    args: {
      after: t.arg.string({ required: false, description: 'Resume after this cursor.' }),
      deviceId: t.arg.string({
        required: false,
        description:
          'This device’s id, as passed to startCall/acceptCall; signals addressed to it arrive here. Default: this WebSocket connection.',
      }),
    },
    ...streamResolvers<CallEventRoot>(open),
  }),
);
