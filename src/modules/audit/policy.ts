import { type GraphQLField, type GraphQLOutputType, getNamedType } from 'graphql';

/**
 * Root fields that touch no patient data, so they are not audited. Everything else is: a new
 * field is audited unless it is added here (deny by default), with the reason next to it.
 */
export const NOT_AUDITED: ReadonlySet<string> = new Set([
  // who am I, the deployment's models and ICE servers: no patient data
  'me',
  'models',
  'callIceServers',
  // the connection's own token (its argument is a token: never read, and this field is not recorded at all)
  'refreshConnectionToken',
  // per-user settings, not about patients
  'callBusyPolicy',
  'setCallBusyPolicy',
  'notificationPreferences',
  'setNotificationPreferences',
  // presence and typing: ephemeral online status (no health content, never stored), high frequency
  'presence',
  'setPresence',
  'presenceChanged',
  'setTyping',
  // media-path signalling and liveness of a call whose start/accept/end are audited; opaque SDP/ICE
  'sendCallSignal',
  'callHeartbeat',
  'reportCallQuality',
]);

/**
 * The object type a root field accesses when its return type does not say it (events, counts,
 * bulk results). A field can also declare it: `extensions: { audit: { object: 'Message' } }`.
 */
const OBJECT_OF: Readonly<Record<string, string>> = {
  conversationEvents: 'Conversation',
  notificationEvents: 'Notification',
  alertRaised: 'Alert',
  callEvents: 'Call',
  predictionEvents: 'Prediction',
  riskAlerts: 'RiskRule',
  scoringBatchProgress: 'ScoringBatch',
  unreadNotificationCount: 'Notification',
  markAllNotificationsRead: 'Notification',
  sendNotifications: 'Notification',
  createReminders: 'Reminder',
  activeCalls: 'Call',
  callHistory: 'Call',
  // an admin's security action on a user (returns the revocation instant)
  revokeUserSessions: 'User',
};

/** How one root field is audited (computed once, when the schema is instrumented). */
export interface FieldPolicy {
  field: string;
  objectType: string;
}

/** The policy of a root field, or undefined when it is not audited. */
export function policyOf<C>(field: GraphQLField<unknown, C>): FieldPolicy | undefined {
  if (NOT_AUDITED.has(field.name)) return undefined;
  const declared = (field.extensions as { audit?: { object?: string } } | undefined)?.audit?.object;
  return { field: field.name, objectType: declared ?? OBJECT_OF[field.name] ?? typeName(field.type) };
}

/** `[Message!]!` → Message, `ConversationConnection` → Conversation. */
function typeName(type: GraphQLOutputType): string {
  const name = getNamedType(type).name;
  return name.endsWith('Connection') ? name.slice(0, -'Connection'.length) : name;
}

/** Most ids kept per entry (arguments first, then the result's). */
export const MAX_IDS = 50;

/** An argument naming an object: `id`, `…Id`, `…Ids`; not a device id nor a client's own key (`clientMessageId`...). */
const isIdKey = (k: string) => k === 'id' || ((k.endsWith('Id') || k.endsWith('Ids')) && k !== 'deviceId' && !k.startsWith('client'));

/** Pushes id-like values (strings and numbers; arrays of them) of `o`'s id keys into `out`. */
function idsOf(o: unknown, out: Set<string>) {
  if (!o || typeof o !== 'object') return;
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (out.size >= MAX_IDS) return;
    if (!isIdKey(k)) continue;
    if (typeof v === 'string' || typeof v === 'number') out.add(String(v).slice(0, 200));
    else if (Array.isArray(v)) for (const x of v.slice(0, MAX_IDS)) if (typeof x === 'string') out.add(x.slice(0, 200));
  }
}

/**
 * Object ids from a root field's arguments: its own id arguments (`id`, `conversationId`,
 * `subjectId`, `userIds`...) and those of an `input` object or `inputs` list. Filters are not read
 * (an audit query's `objectId` filter is not an access to that object).
 */
export function argumentIds(args: Record<string, unknown>, out = new Set<string>()): Set<string> {
  idsOf(args, out);
  const { input, inputs } = args;
  idsOf(input, out);
  if (Array.isArray(inputs)) for (const i of inputs.slice(0, MAX_IDS)) idsOf(i, out);
  return out;
}

/**
 * Ids of what a root field returned: the object's `id`, each item's of a list (or of a bulk
 * item result's object), each node's of a connection page. Bounded by {@link MAX_IDS}.
 */
export function resultIds(value: unknown, out = new Set<string>()): Set<string> {
  const add = (v: unknown) => {
    if (out.size >= MAX_IDS || !v || typeof v !== 'object') return;
    const id = (v as { id?: unknown }).id;
    if (typeof id === 'string' || typeof id === 'number') {
      out.add(String(id));
      return;
    }
    // bulk results: { index, <object>, error }
    for (const x of Object.values(v as Record<string, unknown>))
      if (x && typeof x === 'object' && !Array.isArray(x) && typeof (x as { id?: unknown }).id === 'string')
        out.add((x as { id: string }).id);
  };
  if (Array.isArray(value)) for (const v of value) add(v);
  else if (value && typeof value === 'object' && Array.isArray((value as { edges?: unknown }).edges))
    for (const e of (value as { edges: Array<{ node?: unknown }> }).edges) add(e?.node);
  else add(value);
  return out;
}
