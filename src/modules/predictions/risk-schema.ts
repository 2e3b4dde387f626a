// GraphQL of live predictions: predictionEvents (every stored score of a subject) and risk rules
// (createRiskRule, riskAlerts: crossings only); both durable and resumable by cursor.
import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';
import { StreamEvent, type StreamOpener, streamResolvers } from '../../graphql/stream-event.js';
import type { RiskCrossedRoot } from './risk.js';
import type { PredictionAddedRoot } from './service.js';
import { PredictionType } from './schema.js';
import type { RiskRuleRow } from './tables.js';

const RiskRuleInput = builder.inputType('RiskRuleInput', {
  description: 'A risk watch to create.',
  fields: (t) => ({
    model: t.string({ description: 'A RISK_SCORE model name, e.g. `risk-30d`.' }),
    enterAt: t.float({ description: 'Enter high risk at this score or above (0–100).' }),
    exitAt: t.float({ description: 'Leave high risk below this score (at most enterAt).' }),
    cooldownSeconds: t.int({ required: false, description: 'Suppress a new entry within this many seconds of the last (default 0).' }),
    subjectIds: t.idList({ required: false, description: 'The cohort; omit for every subject of your organisation.' }),
  }),
});

const RiskRule = builder.objectRef<RiskRuleRow>('RiskRule').implement({
  description:
    'A risk watch: crossings of `enterAt` from below (re-armed below `exitAt`, at most one entry per cooldown) are pushed on `riskAlerts`.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Rule id (subscribe with `riskAlerts(ruleId)`).' }),
    model: t.exposeString('modelName', { description: 'The RISK_SCORE model whose scores it watches.' }),
    enterAt: t.exposeFloat('enterAt', { description: 'A score at or above this (0–100) enters high risk.' }),
    exitAt: t.exposeFloat('exitAt', { description: 'A score below this leaves high risk (re-arms the rule).' }),
    cooldownSeconds: t.exposeInt('cooldownSeconds', { description: 'A new entry within this many seconds of the last one is not told.' }),
    subjectIds: t.exposeIDList('subjectIds', { nullable: true, description: 'The cohort; null: every subject of the organisation.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was created.', resolve: (r) => r.createdAt }),
  }),
});

const RiskDirection = builder.enumType('RiskDirection', {
  description: 'Which way a subject crossed.',
  values: {
    ENTERED: { value: 'entered', description: 'Rose to `enterAt` or above from below (armed, not in cooldown).' },
    EXITED: { value: 'exited', description: 'Fell below `exitAt` (the rule re-arms).' },
  } as const,
});

const RiskCrossed = builder.objectRef<RiskCrossedRoot>('RiskCrossed').implement({
  description: 'A subject crossed a risk rule’s threshold. Durable: resume with `after` to get exactly the crossings you missed.',
  interfaces: [StreamEvent],
  isTypeOf: (v) => (v as RiskCrossedRoot).kind === 'RiskCrossed',
  fields: (t) => ({
    ruleId: t.exposeID('ruleId', { description: 'The rule.' }),
    subjectId: t.exposeID('subjectId', { description: 'The subject (patient).' }),
    direction: t.field({ type: RiskDirection, description: 'Into or out of high risk.', resolve: (e) => e.direction }),
    from: t.exposeFloat('from', { nullable: true, description: 'The subject’s previous score under this rule.' }),
    to: t.exposeFloat('to', { description: 'The score that crossed.' }),
    prediction: t.field({ type: PredictionType, description: 'The stored prediction that crossed.', resolve: (e) => e.prediction }),
  }),
});

builder.mutationField('createRiskRule', (t) =>
  t.field({
    type: RiskRule,
    description:
      'Creates a risk watch with an enter threshold, an exit threshold (hysteresis) and a cooldown (providers, admins, services).',
    args: { input: t.arg({ type: RiskRuleInput, description: 'The rule.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.predictions.risk.createRule(requireViewer(ctx), input),
  }),
);

const openRisk: StreamOpener = (args, ctx) =>
  ctx.services.predictions.risk.open(requireViewer(ctx), String(args.ruleId), args.after as string | null);

builder.subscriptionField('riskAlerts', (t) =>
  t.field({
    type: RiskCrossed,
    description: 'Crossings of a risk rule, in commit order; not every re-score. Pass `after` to get the crossings you missed first.',
    args: {
      ruleId: t.arg.id({ description: 'Rule id.' }),
      after: t.arg.string({ required: false, description: 'Resume after this cursor.' }),
    },
    ...streamResolvers<RiskCrossedRoot>(openRisk),
  }),
);

const PredictionAdded = builder.objectRef<PredictionAddedRoot>('PredictionAdded').implement({
  description: 'A prediction about the subject was stored (by `score`).',
  interfaces: [StreamEvent],
  isTypeOf: (v) => (v as PredictionAddedRoot).kind === 'PredictionAdded',
  fields: (t) => ({
    prediction: t.field({ type: PredictionType, description: 'The stored prediction.', resolve: (e) => e.prediction }),
  }),
});

const openSubject: StreamOpener = (args, ctx) =>
  ctx.services.predictions.openSubject(requireViewer(ctx), String(args.subjectId), args.after as string | null);

builder.subscriptionField('predictionEvents', (t) =>
  t.field({
    type: PredictionAdded,
    description:
      'Every prediction stored about a subject, live, in commit order (providers, admins and services of the organisation; a patient only their own). Pass `after` to first get what you missed.',
    args: {
      subjectId: t.arg.id({ description: 'The subject (patient).' }),
      after: t.arg.string({ required: false, description: 'Resume after this cursor.' }),
    },
    ...streamResolvers<PredictionAddedRoot>(openSubject),
  }),
);
