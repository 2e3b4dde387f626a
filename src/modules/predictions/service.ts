import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Commit } from '../../realtime/commit.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { badInput, conflict, forbidden, notFound } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import type { StreamEventRoot, StreamSpec } from '../../realtime/stream.js';
import { groupCommit } from '../../shared/group-commit.js';
import { type PageArgs, forwardConnection, forwardPage, parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import { withAuditDetail } from '../audit/detail.js';
import type { ModelCard } from './card.js';
import { type PredictionSnapshot, subjectStream, toPredictionSnapshot } from './events.js';
import { checkRow } from './features.js';
import type { PredictionMetrics } from './metrics.js';
import { type ModelSet, parseModelRef } from './models.js';
import * as repo from './repo.js';
import type { NewPrediction } from './tables.js';
import { createRisk } from './risk.js';
import { type ScoreOptions, type ScoreOutcome, scoreRows } from './scorer.js';

export interface PredictionsDeps {
  db: Db;
  commit: Commit;
  cursors: CursorCodec;
  logger: Logger;
  config: Config['predictions'];
  limits: Config['limits'];
  /** This process's models, loading in the background from boot. */
  models: Promise<ModelSet>;
  metrics: PredictionMetrics;
}

/** Who may score: services and clinicians of the organisation (and the system, for workers). */
export const SCORERS = new Set<Viewer['role']>(['service', 'provider', 'admin', 'system']);

export const modelRef = z.string().trim().min(1).max(100);
export const topK = z.number().int().min(1, 'must be between 1 and 10').max(10, 'must be between 1 and 10');

const scoreInput = z.object({
  model: modelRef,
  features: z.unknown(),
  subjectId: z.string().trim().min(1).max(200).nullish(),
  clientKey: z.string().min(1).max(128).nullish(),
  explain: z.boolean().nullish(),
  topK: topK.nullish(),
});

/** A model version a request resolved to, with what scoring it needs. */
export interface Resolved {
  card: ModelCard;
  set: ModelSet;
}

/** An alias name: lower-case letters, digits, `-` and `_`. */
const promoteAlias = z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/, 'expected lower-case letters, digits, - or _ (up to 40), e.g. champion');

/** How long a resolved alias is reused before it is read again. */
const ALIAS_TTL_MS = 5_000;

/** Root value of a PredictionAdded event. */
export type PredictionAddedRoot = StreamEventRoot & { kind: 'PredictionAdded'; prediction: PredictionSnapshot };

/** The explicit version of a model reference, if it names one. */
const parsedVersion = (ref: string) => parseModelRef(ref)?.version;

/** The prediction columns a scoring outcome fills. */
const outcomeColumns = (o: ScoreOutcome) => ({
  producedBy: o.modelVersion,
  score: o.score,
  label: o.label,
  probabilities: o.probabilities,
  fallback: o.fallback,
  fallbackReason: o.fallbackReason,
  explanation: o.explanation,
  explanationMethod: o.explanationMethod,
});

export const requestHash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');

/** Real-time scoring and the model registry; each method authorises first. */
export function createPredictionsService(deps: PredictionsDeps) {
  const { db, commit, metrics } = deps;
  let registered: Promise<void> | undefined;
  /** The models, mirrored into the registry once per process (cards are the source). */
  const models = async () => {
    const set = await deps.models;
    registered ??= repo
      .mirrorCards(
        db,
        set.all().map((m) => m.card),
      )
      .catch((err) => {
        registered = undefined;
        throw err;
      });
    await registered;
    return set;
  };

  /** Alias → version, cached for ALIAS_TTL_MS (one query less per score; an alias change shows within that). */
  const aliases = new Map<string, { version: string | undefined; at: number }>();
  const aliasVersion = async (name: string, alias: string) => {
    const key = `${name}:${alias}`;
    const hit = aliases.get(key);
    if (hit && Date.now() - hit.at < ALIAS_TTL_MS) return hit.version;
    const version = await repo.aliasVersion(db, name, alias);
    aliases.set(key, { version, at: Date.now() });
    return version;
  };

  /** Resolves `name`, `name@version` or `name:alias` (default alias `champion`) to a loaded card. */
  const resolve = async (ref: string, field = 'model'): Promise<Resolved> => {
    const set = await models();
    const parsed = parseModelRef(ref);
    const known = parsed && set.all().some((m) => m.card.name === parsed.name);
    if (!parsed || !known) throw badInput(`${field}: unknown model "${ref}"; see the \`models\` query.`, field);
    const version = parsed.version ?? (await aliasVersion(parsed.name, parsed.alias ?? 'champion'));
    const m = version ? set.get(parsed.name, version) : undefined;
    if (!m) throw badInput(`${field}: no version of ${parsed.name} matches "${ref}".`, field);
    return { card: m.card, set };
  };

  /** Scores clean rows with a resolved model, timing inference and counting outcomes. */
  const run = (
    r: Resolved,
    rows: Parameters<typeof scoreRows>[3],
    opts: ScoreOptions,
    mode: 'realtime' | 'batch' | 'shadow',
  ): ScoreOutcome[] => {
    const { card, set } = r;
    const t0 = performance.now();
    const out = scoreRows(set.tf, set.get(card.name, card.version), card, rows, opts);
    metrics.inference.observe({ model: card.name, version: card.version, mode, backend: set.backend }, (performance.now() - t0) / 1000);
    let fallbacks = 0;
    for (const o of out) {
      if (!o.fallback) continue;
      fallbacks++;
      metrics.fallbacks.inc({ model: card.name, reason: o.fallbackReason ?? 'unknown' });
    }
    if (fallbacks) metrics.predictions.inc({ model: card.name, outcome: 'fallback' }, fallbacks);
    if (out.length > fallbacks) metrics.predictions.inc({ model: card.name, outcome: 'model' }, out.length - fallbacks);
    return out;
  };

  const risk = createRisk({
    db,
    cursors: deps.cursors,
    riskModels: async () =>
      (await models())
        .all()
        .filter((m) => m.card.task === 'risk_score')
        .map((m) => m.card.name),
  });

  /**
   * Shadow scoring: when the request named no version and the model has a `challenger` alias on
   * another version, the challenger scores the same row after the answer (off the response path).
   * Its result is stored with `shadowOf` and compared (metric), never returned, pushed or used by
   * risk rules.
   */
  const shadow = (viewer: Viewer, of: repo.PredictionRowOf, row: Parameters<typeof scoreRows>[3][number], opts: ScoreOptions) => {
    setImmediate(() => {
      void (async () => {
        const version = await aliasVersion(of.modelName, 'challenger');
        if (!version || version === of.modelVersion) return;
        const challenger = await resolve(`${of.modelName}@${version}`);
        const [o] = run(challenger, [row], opts, 'shadow');
        if (!o) return;
        await storeShadow({
          ...of,
          id: newId(),
          modelVersion: version,
          ...outcomeColumns(o),
          clientKey: null,
          shadowOf: of.id,
          createdAt: new Date(),
        });
        if (o.score !== null && of.score !== null) metrics.shadowDiff.observe({ model: of.modelName }, Math.abs(o.score - of.score));
        else if (o.label !== null) metrics.shadowDisagree.inc({ model: of.modelName, agree: String(o.label === of.label) });
      })().catch((err: unknown) => deps.logger.warn({ err, predictionId: of.id, orgId: viewer.orgId }, 'shadow scoring failed'));
    });
  };

  /**
   * Stores scores with their PredictionAdded events and risk evaluation. Concurrent `score`s share
   * one transaction (group commit: one multi-row insert, one position reservation per subject
   * stream, one read of the rules), so the database round trips are paid per group, not per score.
   * A score whose client key is already taken comes back undefined (a concurrent request won).
   */
  const store = groupCommit(
    (rows: NewPrediction[]) =>
      commit(async (tx, events) => {
        const inserted = new Map((await repo.insertPredictions(tx, rows)).map((r) => [r.id, r]));
        const stored = rows.map((r) => inserted.get(r.id as string));
        const snapshots = stored.filter((r) => r !== undefined).map(toPredictionSnapshot);
        const onStream = snapshots.filter((p): p is PredictionSnapshot & { subjectId: string } => p.subjectId !== null);
        if (onStream.length > 0) {
          const streams = new Map<string, { key: { orgId: string; subjectId: string }; orgId: string; count: number }>();
          for (const p of onStream) {
            const k = `${p.orgId}\n${p.subjectId}`;
            const s = streams.get(k);
            if (s) s.count++;
            else streams.set(k, { key: { orgId: p.orgId, subjectId: p.subjectId }, orgId: p.orgId, count: 1 });
          }
          const first = await subjectStream.reserve(tx, [...streams.values()]);
          const next = new Map([...streams].map(([k, s]) => [k, first.get(s.key) as number]));
          await subjectStream.insertAt(
            tx,
            events,
            onStream.map((p) => {
              const k = `${p.orgId}\n${p.subjectId}`;
              const position = next.get(k) as number;
              next.set(k, position + 1);
              return {
                key: { orgId: p.orgId, subjectId: p.subjectId },
                orgId: p.orgId,
                type: 'PredictionAdded' as const,
                payload: { prediction: p },
                subject: p.id,
                position,
              };
            }),
          );
        }
        await risk.evaluate(tx, events, snapshots);
        return stored;
      }),
    { max: 64 },
  );

  /** Shadow results, stored in groups too (outside any request's transaction). */
  const storeShadow = groupCommit(async (rows: NewPrediction[]) => {
    await repo.insertPredictions(db, rows);
    return rows.map(() => undefined);
  });

  const service = {
    models,
    resolve,
    run,
    risk,

    /**
     * Points an alias (default `champion`) at a registered version: admins of the operator
     * organisations in MODEL_ADMIN_ORGS only (the registry is deployment-wide). This instance
     * routes by it at once, others within ALIAS_TTL_MS. The audit row carries the old and new version.
     */
    async promote(viewer: Viewer, name: string, version: string, alias: string) {
      if (viewer.role !== 'admin' || !deps.config.adminOrgs.includes(viewer.orgId))
        throw forbidden('Only admins of an operator organisation (MODEL_ADMIN_ORGS) can promote models.');
      const a = parseInput(promoteAlias, alias, 'alias');
      const set = await models();
      if (!set.all().some((m) => m.card.name === name)) throw notFound('Model');
      const r = await repo.setAlias(db, name, a, version);
      if (r === 'missing') throw notFound('Model version');
      aliases.delete(`${name}:${a}`);
      deps.logger.info({ model: name, alias: a, from: r.previous ?? null, to: version, by: viewer.userId }, 'model alias promoted');
      const view = (await service.listModels()).find((m) => m.name === name && m.version === version);
      if (!view) throw notFound('Model version');
      return withAuditDetail({ ...view, id: `${name}@${version}` }, { model: name, alias: a, from: r.previous ?? null, to: version });
    },

    /** Every registered model version with its aliases (cards mirrored at boot). */
    async listModels() {
      const set = await models();
      const [rows, aliases] = await Promise.all([repo.listModels(db), repo.listAliases(db)]);
      return rows.map((r) => {
        const loaded = set.get(r.name, r.version);
        return {
          ...r,
          aliases: aliases.filter((a) => a.name === r.name && a.version === r.version).map((a) => a.alias),
          status: loaded?.status === 'loaded' ? r.status : 'failed_to_load',
          loadedAt: loaded?.loadedAt ?? null,
          loadError: loaded?.error ?? null,
          backend: set.backend,
        };
      });
    },

    /**
     * Scores one row: validated against the model's feature spec (missing required → BAD_USER_INPUT,
     * out of range → clipped with a warning), idempotent by clientKey, stored with a PredictionAdded
     * event on the subject's stream in one transaction.
     */
    async score(viewer: Viewer, input: unknown): Promise<PredictionSnapshot> {
      if (!SCORERS.has(viewer.role)) throw forbidden('Only services, providers and admins can score.');
      const v = parseInput(scoreInput, input);
      const resolved = await resolve(v.model);
      const checked = checkRow(resolved.card.featureSpec, v.features);
      if (!checked.ok) throw badInput(checked.error, checked.field);
      const opts = { explain: v.explain ?? true, topK: v.topK ?? 3 };
      const sha = requestHash([resolved.card.name, resolved.card.version, v.features, v.subjectId ?? null, opts]);
      const key = v.clientKey ?? null;
      const replay = (row: NonNullable<Awaited<ReturnType<typeof repo.predictionByKey>>>) => {
        if (row.requestSha256 !== sha) throw conflict('clientKey was already used for a different score request.');
        return toPredictionSnapshot(row);
      };
      if (key) {
        const prior = await repo.predictionByKey(db, viewer.orgId, viewer.userId, key);
        if (prior) return replay(prior);
      }
      const [out] = run(resolved, [checked.row], opts, 'realtime');
      const o = out as ScoreOutcome;
      const row = await store({
        id: newId(),
        orgId: viewer.orgId,
        subjectId: v.subjectId ?? null,
        modelName: resolved.card.name,
        modelVersion: resolved.card.version,
        ...outcomeColumns(o),
        warnings: checked.warnings,
        requestedBy: viewer.userId,
        clientKey: key,
        requestSha256: sha,
      });
      if (row) {
        if (!parsedVersion(v.model)) shadow(viewer, row, checked.row, opts);
        return toPredictionSnapshot(row);
      }
      const prior = key ? await repo.predictionByKey(db, viewer.orgId, viewer.userId, key) : undefined;
      if (!prior) throw new Error('prediction insert conflicted without a prior row');
      return replay(prior);
    },

    /**
     * A subject's predictions, newest first. Clinicians, admins and services of the organisation
     * read any subject's; a patient only their own (anyone else's is an empty list, not an error).
     */
    async history(viewer: Viewer, args: PageArgs & { subjectId: string; model?: string | null }) {
      const own = viewer.role === 'patient' && args.subjectId === viewer.userId;
      const scope = `predictions:${viewer.orgId}:${args.subjectId}`;
      const page = forwardPage(args, deps.limits, deps.cursors, scope, 'predictions');
      if (viewer.role === 'patient' && !own) return forwardConnection([], page, deps.cursors, scope, toPredictionSnapshot);
      const model = args.model ? parseModelRef(args.model)?.name : undefined;
      const rows = await repo.pagePredictions(db, viewer.orgId, args.subjectId, {
        limit: page.limit + 1,
        afterId: page.afterId,
        modelName: model,
      });
      return forwardConnection(rows, page, deps.cursors, scope, toPredictionSnapshot);
    },

    /**
     * Authorises `predictionEvents`: the subject's stream (clinicians, admins and services of the
     * organisation; a patient only their own). Resumable with `after`.
     */
    async openSubject(viewer: Viewer, subjectId: string, after: string | null | undefined): Promise<StreamSpec> {
      if (viewer.role === 'patient' ? subjectId !== viewer.userId : !SCORERS.has(viewer.role))
        throw forbidden('You can watch only your own predictions.');
      return subjectStream.open(
        { orgId: viewer.orgId, subjectId },
        {
          orgId: viewer.orgId,
          after,
          cursors: deps.cursors,
          scope: `subject:${viewer.orgId}:${subjectId}`,
          toRoot: (ev, cursor): PredictionAddedRoot => ({ kind: 'PredictionAdded', cursor, at: ev.at, prediction: ev.payload.prediction }),
        },
      );
    },

    /** Readiness of scoring: degraded (never down) when a model failed to load and its rule answers. */
    async health(): Promise<{ status: 'ok' | 'degraded'; backend: string; failed: string[]; error?: string }> {
      const set = await deps.models;
      const failed = set.failed().map((m) => m.id);
      // no card at all (a models directory missing from a deployment): nothing can score, not even a fallback rule
      if (!set.all().length) return { status: 'degraded', backend: set.backend, failed, error: 'no model cards found' };
      return { status: failed.length ? 'degraded' : 'ok', backend: set.backend, failed };
    },
  };
  return service;
}

export type PredictionsService = ReturnType<typeof createPredictionsService>;
