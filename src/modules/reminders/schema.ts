import { builder } from '../../graphql/builder.js';
import { itemResult } from '../../graphql/bulk.js';
import { requireViewer } from '../../graphql/context.js';
import { pendingTimes } from './occurrence.js';
import { MAX_LISTED } from './service.js';
import type { ReminderRow } from './tables.js';

const ReminderKindEnum = builder.enumType('ReminderKind', {
  description: 'What a reminder is for.',
  values: {
    MEDICATION: { value: 'medication', description: 'Take a medication.' },
    APPOINTMENT: { value: 'appointment', description: 'An upcoming appointment.' },
    CUSTOM: { value: 'custom', description: 'Anything else.' },
  } as const,
});

const ReminderStatusEnum = builder.enumType('ReminderStatus', {
  description: 'Where a reminder is in its life.',
  values: {
    ACTIVE: { value: 'active', description: 'Will fire at `nextAt`.' },
    PAUSED: { value: 'paused', description: 'Held; occurrences that fall due while paused are dropped.' },
    CANCELLED: { value: 'cancelled', description: 'Stopped for good.' },
    COMPLETED: { value: 'completed', description: 'Every occurrence has fired (a snooze makes it active again).' },
  } as const,
});

const ScheduleKindEnum = builder.enumType('ReminderScheduleKind', {
  description: 'How a reminder is scheduled.',
  values: {
    ONE_OFF: { value: 'once', description: 'Once, at `at`.' },
    RECURRING: { value: 'cron', description: 'On a cron schedule in `timeZone`.' },
    APPOINTMENT: { value: 'appointment', description: '`offsetsMinutes` before `appointmentAt`.' },
  } as const,
});

const Reminder = builder.objectRef<ReminderRow>('Reminder').implement({
  description:
    'A medication, appointment or custom reminder for one user. Each occurrence is delivered exactly once, as a REMINDER notification (live through `notificationEvents`); outside critical ones, occurrences due in quiet hours arrive when they end.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Reminder id.' }),
    userId: t.exposeID('userId', { description: 'Who is reminded.' }),
    createdBy: t.exposeID('createdBy', { description: 'Who set it up (the user, a provider or a service).' }),
    kind: t.field({ type: ReminderKindEnum, description: 'What it is for.', resolve: (r) => r.kind }),
    title: t.exposeString('title', { description: 'Short title, used as the notification title.' }),
    body: t.exposeString('body', { nullable: true, description: 'Longer text, used as the notification body.' }),
    critical: t.exposeBoolean('critical', { description: 'Critical reminders are CRITICAL notifications and ignore quiet hours.' }),
    status: t.field({ type: ReminderStatusEnum, description: 'Active, paused, cancelled or completed.', resolve: (r) => r.status }),
    scheduleKind: t.field({
      type: ScheduleKindEnum,
      description: 'One-off, recurring or appointment.',
      resolve: (r) => (r.cron ? 'cron' : r.appointmentAt ? 'appointment' : 'once'),
    }),
    at: t.field({ type: 'DateTime', nullable: true, description: 'When a one-off reminder fires.', resolve: (r) => r.at }),
    cron: t.exposeString('cron', { nullable: true, description: 'Cron expression of a recurring reminder, evaluated in `timeZone`.' }),
    timeZone: t.exposeString('timeZone', { description: 'IANA time zone of the cron schedule (08:00 stays 08:00 local across DST).' }),
    appointmentAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'The appointment of an appointment reminder.',
      resolve: (r) => r.appointmentAt,
    }),
    offsetsMinutes: t.exposeIntList('offsetsMinutes', {
      description: 'Minutes before the appointment at which it fires (empty for other kinds).',
    }),
    nextAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'The next delivery due (regular occurrence or snooze); null when nothing is pending. Quiet hours may delay it.',
      resolve: (r) => (r.status === 'active' ? (pendingTimes(r).sort((a, b) => a.getTime() - b.getTime())[0] ?? null) : null),
    }),
    snoozedUntil: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a pending snooze fires, if any.',
      resolve: (r) => r.snoozedUntil,
    }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was created.', resolve: (r) => r.createdAt }),
    updatedAt: t.field({ type: 'DateTime', description: 'Last change of status or schedule.', resolve: (r) => r.updatedAt }),
  }),
});

const CreateReminderInput = builder.inputType('CreateReminderInput', {
  description: 'A new reminder. Give exactly one of `at`, `cron` (with `timeZone`) or `appointmentAt`.',
  fields: (t) => ({
    userId: t.id({
      required: false,
      description: 'Who to remind: yourself (default), or for providers and services a patient of your organisation.',
    }),
    kind: t.field({ type: ReminderKindEnum, description: 'What it is for.' }),
    title: t.string({ description: 'Short title (1-200 characters).' }),
    body: t.string({ required: false, description: 'Longer text (up to 4,000 characters).' }),
    critical: t.boolean({ required: false, description: 'Deliver even in quiet hours, as a CRITICAL notification (default false).' }),
    at: t.field({ type: 'DateTime', required: false, description: 'One-off: when to fire (in the future, within 5 years).' }),
    cron: t.string({
      required: false,
      description:
        'Recurring: 5-field cron (minute hour day month weekday), or 6 fields with leading seconds; occurrences at least REMINDER_MIN_INTERVAL_MS apart (default 1 minute).',
    }),
    timeZone: t.string({ required: false, description: 'IANA time zone, e.g. Europe/London; required with `cron`.' }),
    appointmentAt: t.field({ type: 'DateTime', required: false, description: 'Appointment: when the appointment is (in the future).' }),
    offsetsMinutes: t.intList({
      required: false,
      description:
        'Appointment: minutes before it to fire (default REMINDER_DEFAULT_OFFSETS_MINUTES, i.e. 24 h and 1 h). Times already past are skipped.',
    }),
    clientKey: t.string({ required: false, description: 'Idempotency key: repeating it returns the same reminder.' }),
  }),
});

builder.queryFields((t) => ({
  reminders: t.field({
    type: [Reminder],
    description: `Your reminders (or, for providers and services, a patient's), active first, at most ${MAX_LISTED}.`,
    args: {
      userId: t.arg.id({ required: false, description: 'A patient of your organisation (providers and services); default yourself.' }),
      status: t.arg({ type: [ReminderStatusEnum], required: false, description: 'Only reminders in these states.' }),
    },
    resolve: (_r, a, ctx) =>
      ctx.services.reminders.list(requireViewer(ctx), { userId: a.userId == null ? null : String(a.userId), status: a.status }),
  }),
}));

const CreateResult = itemResult(
  'CreateReminderResult',
  'reminder',
  Reminder,
  'The reminder created (or created before, for a repeated key); null when refused.',
);

builder.mutationFields((t) => ({
  createReminders: t.field({
    type: [CreateResult],
    description:
      'Creates many reminders in one request (e.g. a scheduler setting up medication reminders for many patients; up to 500). Each item is created on its own, with the same rules as `createReminder`, and is idempotent on its own `clientKey`: refused items get a typed `error` while the others are created; a retried request creates nothing twice.',
    args: { inputs: t.arg({ type: [CreateReminderInput], description: 'The reminders.' }) },
    resolve: (_r, { inputs }, ctx) => ctx.services.reminders.createMany(requireViewer(ctx), inputs),
  }),
  createReminder: t.field({
    type: Reminder,
    description: 'Creates a reminder for yourself, or (providers, services) for a patient of your organisation.',
    args: { input: t.arg({ type: CreateReminderInput, description: 'The reminder.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.reminders.create(requireViewer(ctx), input),
  }),
  snoozeReminder: t.field({
    type: Reminder,
    description: 'Delivers the reminder once more, `minutes` from now (a later snooze replaces a pending one).',
    args: {
      id: t.arg.id({ description: 'Reminder id.' }),
      minutes: t.arg.int({ description: 'Minutes from now (1 to 10,080).' }),
    },
    resolve: (_r, a, ctx) => ctx.services.reminders.snooze(requireViewer(ctx), String(a.id), a.minutes),
  }),
  cancelReminder: t.field({
    type: Reminder,
    description: 'Stops the reminder for good; nothing pending is delivered. Repeating it is harmless.',
    args: { id: t.arg.id({ description: 'Reminder id.' }) },
    resolve: (_r, a, ctx) => ctx.services.reminders.cancel(requireViewer(ctx), String(a.id)),
  }),
  pauseReminder: t.field({
    type: Reminder,
    description: 'Holds an active reminder; occurrences that fall due while paused are dropped.',
    args: { id: t.arg.id({ description: 'Reminder id.' }) },
    resolve: (_r, a, ctx) => ctx.services.reminders.pause(requireViewer(ctx), String(a.id)),
  }),
  resumeReminder: t.field({
    type: Reminder,
    description: 'Resumes a paused reminder from its next occurrence after now.',
    args: { id: t.arg.id({ description: 'Reminder id.' }) },
    resolve: (_r, a, ctx) => ctx.services.reminders.resume(requireViewer(ctx), String(a.id)),
  }),
}));
