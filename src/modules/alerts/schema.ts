import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';
import { StreamEvent, type StreamOpener, streamResolvers } from '../../graphql/stream-event.js';
import { Role, User } from '../identity/schema.js';
import type { AlertEventRoot, AlertSnapshot } from './events.js';

export const AlertLevelEnum = builder.enumType('AlertLevel', {
  description: 'How severe an alert is, from LOW to EMERGENCY. CRITICAL and EMERGENCY alerts escalate when nobody acknowledges them.',
  values: {
    LOW: { value: 'low', description: 'For information.' },
    MEDIUM: { value: 'medium', description: 'Worth attention.' },
    HIGH: { value: 'high', description: 'Needs attention soon.' },
    CRITICAL: { value: 'critical', description: 'Needs attention now; escalates to admins if unacknowledged.' },
    EMERGENCY: { value: 'emergency', description: 'Life-threatening; escalates to admins (as a critical notification) if unacknowledged.' },
  } as const,
});

const AudienceKind = builder.enumType('AlertAudienceKind', {
  description: 'Who an alert is addressed to.',
  values: {
    ORG: { value: 'org', description: 'Every user of the organisation.' },
    ROLES: { value: 'roles', description: 'Users with one of the listed roles.' },
    USERS: { value: 'users', description: 'The listed users.' },
  } as const,
});

const GeoPoint = builder.objectRef<{ lat: number; lng: number }>('GeoPoint').implement({
  description: 'A point on Earth (WGS 84 degrees).',
  fields: (t) => ({
    lat: t.exposeFloat('lat', { description: 'Latitude, -90 to 90.' }),
    lng: t.exposeFloat('lng', { description: 'Longitude, -180 to 180.' }),
  }),
});

const Audience = builder.objectRef<AlertSnapshot['audience']>('AlertAudience').implement({
  description: 'Who an alert is addressed to. Once an alert escalates, the organisation’s admins receive it too.',
  fields: (t) => ({
    kind: t.field({ type: AudienceKind, description: 'Whole organisation, roles or users.', resolve: (a) => a.kind }),
    roles: t.field({
      type: [Role],
      description: 'The roles addressed (empty unless kind is ROLES).',
      resolve: (a) => (a.kind === 'roles' ? (a.roles as Array<'patient'>) : []),
    }),
    userIds: t.idList({
      description: 'The users addressed (empty unless kind is USERS).',
      resolve: (a) => (a.kind === 'users' ? a.userIds : []),
    }),
  }),
});

const Acknowledgement = builder
  .objectRef<{ user: { id: string; name: string; role: string }; at: Date | string }>('AlertAcknowledgement')
  .implement({
    description: 'One recipient’s acknowledgement of an alert.',
    fields: (t) => ({
      user: t.field({ type: User, description: 'Who acknowledged.', resolve: (a) => a.user }),
      at: t.field({ type: 'DateTime', description: 'When they acknowledged.', resolve: (a) => a.at }),
    }),
  });

export const Alert = builder.objectRef<AlertSnapshot>('Alert').implement({
  description: 'An org-wide or targeted alert (outbreak, device alarm, risk threshold...).',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Alert id.' }),
    level: t.field({ type: AlertLevelEnum, description: 'Severity.', resolve: (a) => a.level }),
    type: t.exposeString('type', { description: 'Free-form category chosen by the raiser, e.g. `outbreak` or `fall_detected`.' }),
    title: t.exposeString('title', { description: 'Short title.' }),
    body: t.exposeString('body', { nullable: true, description: 'Longer text, if any.' }),
    location: t.field({
      type: GeoPoint,
      nullable: true,
      description: 'Where it applies, if anywhere in particular.',
      resolve: (a) => (a.lat !== null && a.lng !== null ? { lat: a.lat, lng: a.lng } : null),
    }),
    regionCode: t.exposeString('regionCode', { nullable: true, description: 'Region it applies to (upper case), if any.' }),
    riskScore: t.exposeFloat('riskScore', { nullable: true, description: 'Risk score from 0 to 1, if any.' }),
    actionRequired: t.exposeBoolean('actionRequired', { description: 'Whether recipients must act.' }),
    actionUrl: t.exposeString('actionUrl', { nullable: true, description: 'Where to act (http or https URL), if any.' }),
    expiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'After this instant the alert is no longer delivered.',
      resolve: (a) => a.expiresAt,
    }),
    audience: t.field({ type: Audience, description: 'Who it is addressed to.', resolve: (a) => a.audience }),
    raisedById: t.exposeID('raisedBy', { description: 'Id of the user or service account that raised it.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was raised.', resolve: (a) => a.createdAt }),
    escalatedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it escalated to the organisation’s admins (unacknowledged CRITICAL or EMERGENCY), if it did.',
      resolve: (a) => a.escalatedAt,
    }),
    acknowledgements: t.field({
      type: [Acknowledgement],
      description: 'Who acknowledged it and when, oldest first.',
      resolve: (a, _args, ctx) => ctx.services.alerts.acknowledgements(requireViewer(ctx), a.id),
    }),
    acknowledgedByMe: t.boolean({
      description: 'Whether you have acknowledged it.',
      extensions: { viewerDependent: true },
      resolve: (a, _args, ctx) => ctx.services.alerts.acknowledgedByMe(requireViewer(ctx), a.id),
    }),
  }),
});

const GeoRadiusInput = builder.inputType('GeoRadiusInput', {
  description: 'A circle on Earth: alerts whose location lies within `radiusKm` (great-circle distance) of the point.',
  fields: (t) => ({
    lat: t.float({ description: 'Latitude of the centre, -90 to 90.' }),
    lng: t.float({ description: 'Longitude of the centre, -180 to 180.' }),
    radiusKm: t.float({ description: 'Radius in kilometres, greater than 0.' }),
  }),
});

export const AlertFilter = builder.inputType('AlertFilter', {
  description:
    'Server-side alert filter. Every criterion given must hold; an alert lacking the attribute a criterion tests (no location, region or risk score) does not match it. Applied identically live and on replay.',
  fields: (t) => ({
    minLevel: t.field({ type: AlertLevelEnum, required: false, description: 'Only this level or more severe.' }),
    types: t.stringList({ required: false, description: 'Only these types (up to 50).' }),
    near: t.field({ type: GeoRadiusInput, required: false, description: 'Only alerts located within this circle.' }),
    regions: t.stringList({ required: false, description: 'Only these region codes (case-insensitive, up to 50).' }),
    minRisk: t.float({ required: false, description: 'Only alerts with a risk score of at least this (0 to 1).' }),
  }),
});

const GeoPointInput = builder.inputType('GeoPointInput', {
  description: 'A point on Earth (WGS 84 degrees).',
  fields: (t) => ({
    lat: t.float({ description: 'Latitude, -90 to 90.' }),
    lng: t.float({ description: 'Longitude, -180 to 180.' }),
  }),
});

const AudienceInput = builder.inputType('AlertAudienceInput', {
  description: 'Who receives the alert: give `roles` or `userIds` (not both); omit the audience for the whole organisation.',
  fields: (t) => ({
    roles: t.field({ type: [Role], required: false, description: 'Users with one of these roles.' }),
    userIds: t.idList({ required: false, description: 'These users of your organisation (up to 1000).' }),
  }),
});

const RaiseInput = builder.inputType('RaiseAlertInput', {
  description: 'A new alert.',
  fields: (t) => ({
    level: t.field({ type: AlertLevelEnum, description: 'Severity.' }),
    type: t.string({ description: 'Category: 1-64 letters, digits, `_`, `.`, `:` or `-`.' }),
    title: t.string({ description: 'Short title (up to 200 characters).' }),
    body: t.string({ required: false, description: 'Longer text (up to 4000 characters).' }),
    location: t.field({ type: GeoPointInput, required: false, description: 'Where it applies.' }),
    regionCode: t.string({ required: false, description: 'Region it applies to: 1-32 letters, digits, `_` or `-` (stored upper case).' }),
    riskScore: t.float({ required: false, description: 'Risk score from 0 to 1.' }),
    actionRequired: t.boolean({ required: false, description: 'Whether recipients must act (default false).' }),
    actionUrl: t.string({ required: false, description: 'Where to act: an http or https URL.' }),
    expiresAt: t.field({
      type: 'DateTime',
      required: false,
      description: 'A future instant after which the alert is no longer delivered.',
    }),
    audience: t.field({ type: AudienceInput, required: false, description: 'Who receives it (default: the whole organisation).' }),
    clientKey: t.string({
      required: false,
      description:
        'Idempotency key (up to 128 characters): repeating it returns the same alert; reusing it for a different alert is a CONFLICT.',
    }),
  }),
});

builder.queryField('alerts', (t) =>
  t.connection(
    {
      type: Alert,
      description:
        'Alerts addressed to you that match the filter, newest first. Expired alerts are left out unless `includeExpired`. Pages forward only (`first`/`after`); `last`/`before` are refused.',
      args: {
        filter: t.arg({ type: AlertFilter, required: false, description: 'Server-side filter.' }),
        includeExpired: t.arg.boolean({ required: false, description: 'Also list expired alerts (default false).' }),
      },
      resolve: (_r, args, ctx) => ctx.services.alerts.list(requireViewer(ctx), args),
    },
    { name: 'AlertConnection', description: 'A page of alerts.' },
    { name: 'AlertEdge', description: 'An alert and its cursor.' },
  ),
);

builder.mutationFields((t) => ({
  raiseAlert: t.field({
    type: Alert,
    description:
      'Raises an alert (providers, admins and service accounts). CRITICAL and EMERGENCY alerts escalate to the organisation’s admins when nobody acknowledges them within ALERT_ESCALATION_DELAY_MS.',
    args: { input: t.arg({ type: RaiseInput, description: 'The alert.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.alerts.raise(requireViewer(ctx), input),
  }),
  acknowledgeAlert: t.field({
    type: Alert,
    description: 'Records that you acknowledged an alert addressed to you (repeating it changes nothing). Cancels a pending escalation.',
    args: { id: t.arg.id({ description: 'Alert id.' }) },
    resolve: (_r, a, ctx) => ctx.services.alerts.acknowledge(requireViewer(ctx), String(a.id)),
  }),
}));

type R<K extends AlertEventRoot['kind']> = Extract<AlertEventRoot, { kind: K }>;
const is = (k: string) => (v: unknown) => (v as AlertEventRoot).kind === k;

const AlertRaised = builder.objectRef<R<'AlertRaised'>>('AlertRaised').implement({
  description: 'An alert was raised.',
  interfaces: [StreamEvent],
  isTypeOf: is('AlertRaised'),
  fields: (t) => ({ alert: t.field({ type: Alert, description: 'The new alert.', resolve: (e) => e.alert }) }),
});

const AlertAcknowledged = builder.objectRef<R<'AlertAcknowledged'>>('AlertAcknowledged').implement({
  description: 'A recipient acknowledged an alert. Delivered to the subscribers who receive the alert itself.',
  interfaces: [StreamEvent],
  isTypeOf: is('AlertAcknowledged'),
  fields: (t) => ({
    alertId: t.exposeID('alertId', { description: 'The alert.' }),
    userId: t.id({ description: 'Who acknowledged.', resolve: (e) => e.user.id }),
    user: t.field({ type: User, description: 'Who acknowledged (name and role as of then).', resolve: (e) => e.user }),
    alert: t.field({ type: Alert, description: 'The alert acknowledged.', resolve: (e) => e.alert }),
  }),
});

const AlertEscalated = builder.objectRef<R<'AlertEscalated'>>('AlertEscalated').implement({
  description:
    'Nobody acknowledged a CRITICAL or EMERGENCY alert in time: it escalated to the organisation’s admins (who also get a notification). Delivered to its recipients and to the admins.',
  interfaces: [StreamEvent],
  isTypeOf: is('AlertEscalated'),
  fields: (t) => ({ alert: t.field({ type: Alert, description: 'The alert, with `escalatedAt` set.', resolve: (e) => e.alert }) }),
});

const AlertEvent = builder.unionType('AlertEvent', {
  description: 'Alert events of your organisation that are addressed to you and match your filter.',
  types: [AlertRaised, AlertAcknowledged, AlertEscalated],
});

const open: StreamOpener = (args, ctx) => ctx.services.alerts.openEvents(requireViewer(ctx), args.filter, args.after as string | null);

builder.subscriptionField('alertRaised', (t) =>
  t.field({
    type: AlertEvent,
    description:
      'Alerts addressed to you (and their acknowledgements and escalations), filtered on the server. Pass `after` to first receive what you missed; the same filter applies, and expired alerts are never delivered.',
    args: {
      filter: t.arg({ type: AlertFilter, required: false, description: 'Server-side filter.' }),
      after: t.arg.string({ required: false, description: 'Resume after this cursor.' }),
    },
    ...streamResolvers<AlertEventRoot>(open),
  }),
);
