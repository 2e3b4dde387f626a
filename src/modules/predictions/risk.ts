import { z } from 'zod';
import type { Db, Executor } from '../../db/client.js';
import type { EventSink } from '../../realtime/commit.js';
import type { StreamSpec, StreamEventRoot } from '../../realtime/stream.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { badInput, forbidden, notFound } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import { parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import { type PredictionSnapshot, type RiskCrossing, riskStream } from './events.js';
import * as repo from './repo.js';
import type { RiskRuleRow } from './tables.js';

const WATCHERS = new Set<Viewer['role']>(['provider', 'admin', 'service']);
const percent = z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100');
const ruleInput = z.object({
  model: z.string().trim().min(1).max(64),
  enterAt: percent,
  exitAt: percent,
  cooldownSeconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .nullish(),
  subjectIds: z.array(z.string().trim().min(1).max(200)).min(1).max(10_000).nullish(),
});

export type RiskCrossedRoot = StreamEventRoot & { kind: 'RiskCrossed' } & RiskCrossing;

/**
 * Risk watches with hysteresis and cooldown. The state per (rule, subject) lives in PostgreSQL and
 * changes in the transaction that stores the score, with the crossing appended to the rule's
 * stream in that same transaction: a crossing is never lost, never told twice, and replayed exactly.
 */
export function createRisk(deps: { db: Db; cursors: CursorCodec; riskModels: () => Promise<string[]> }) {
  return {
    async createRule(viewer: Viewer, input: unknown): Promise<RiskRuleRow> {
      if (!WATCHERS.has(viewer.role)) throw forbidden('Only providers, admins and services can watch risk.');
      const v = parseInput(ruleInput, input);
      if (v.exitAt > v.enterAt) throw badInput('exitAt: must not be above enterAt (hysteresis).', 'exitAt');
      if (!(await deps.riskModels()).includes(v.model)) throw badInput(`model: "${v.model}" is not a risk-score model.`, 'model');
      return repo.insertRiskRule(deps.db, {
        id: newId(),
        orgId: viewer.orgId,
        modelName: v.model,
        enterAt: v.enterAt,
        exitAt: v.exitAt,
        cooldownSeconds: v.cooldownSeconds ?? 0,
        subjectIds: v.subjectIds ? [...new Set(v.subjectIds)] : null,
        createdBy: viewer.userId,
      });
    },

    /**
     * Applies stored scores to every rule watching their subjects, inside the scores' transaction:
     * one read of the rules for the whole group, then each (rule, subject) state is locked in
     * (rule, subject) order, so concurrent groups cannot deadlock on each other.
     */
    async evaluate(tx: Executor, events: EventSink, ps: readonly PredictionSnapshot[]): Promise<void> {
      const scored = ps.filter((p): p is PredictionSnapshot & { subjectId: string; score: number } => !!p.subjectId && p.score !== null);
      if (scored.length === 0) return;
      const rules = await repo.rulesForModels(tx, [...new Set(scored.map((p) => p.orgId))], [...new Set(scored.map((p) => p.modelName))]);
      if (rules.length === 0) return;
      const work: Array<{ rule: RiskRuleRow; p: (typeof scored)[number] }> = [];
      for (const rule of rules) {
        const cohort = rule.subjectIds ? new Set(rule.subjectIds) : undefined;
        for (const p of scored)
          if (rule.orgId === p.orgId && rule.modelName === p.modelName && (!cohort || cohort.has(p.subjectId))) work.push({ rule, p });
      }
      // stable: a subject scored twice in one group is applied in the order of its scores
      work.sort((a, b) => cmp(a.rule.id, b.rule.id) || cmp(a.p.subjectId, b.p.subjectId));
      const now = Date.now();
      for (const { rule, p } of work) {
        const s = await repo.lockRuleState(tx, p.orgId, rule.id, p.subjectId);
        let { high, lastEnteredAt } = s;
        let direction: RiskCrossing['direction'] | undefined;
        const cooled = !lastEnteredAt || now - lastEnteredAt.getTime() >= rule.cooldownSeconds * 1000;
        if (!high && p.score >= rule.enterAt && cooled) {
          high = true;
          lastEnteredAt = new Date(now);
          direction = 'entered';
        } else if (high && p.score < rule.exitAt) {
          high = false;
          direction = 'exited';
        }
        await repo.saveRuleState(tx, rule.id, p.subjectId, { high, lastEnteredAt, lastScore: p.score });
        if (direction)
          await riskStream.append(tx, events, {
            key: rule.id,
            orgId: p.orgId,
            type: 'RiskCrossed',
            payload: { ruleId: rule.id, subjectId: p.subjectId, direction, from: s.lastScore, to: p.score, prediction: p },
            subject: p.subjectId,
          });
      }
    },

    /** Authorises `riskAlerts`: the rule's stream (providers, admins and services of its org). */
    async open(viewer: Viewer, ruleId: string, after: string | null | undefined): Promise<StreamSpec> {
      if (!WATCHERS.has(viewer.role)) throw forbidden('Only providers, admins and services can watch risk.');
      const rule = isUuid(ruleId) ? await repo.findRiskRule(deps.db, viewer.orgId, ruleId) : undefined;
      if (!rule) throw notFound('RiskRule');
      return riskStream.open(rule.id, {
        orgId: rule.orgId,
        after,
        cursors: deps.cursors,
        scope: `risk:${rule.id}`,
        toRoot: (ev, cursor): RiskCrossedRoot => ({ kind: 'RiskCrossed', cursor, at: ev.at, ...ev.payload }),
      });
    },
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export type Risk = ReturnType<typeof createRisk>;
