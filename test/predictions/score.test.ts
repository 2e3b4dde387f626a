import { describe, expect } from 'vitest';
import { connect, gql, live, until } from '../harness/clients.js';
import { it } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import { SCORE, riskFeatures, score, urgencyFeatures } from './ops.js';

describe('score', () => {
  it('scores 30-day risk with exact linear explanations, top 3 by |contribution|', async ({ app, org }) => {
    const p = await score(app, org.service, { model: 'risk-30d', features: riskFeatures(), subjectId: 'patient-1' });
    expect(p.fallback).toBe(false);
    expect(p.fallbackReason).toBeNull();
    expect(p.modelVersion).toBe('1.0.0');
    expect(p.model).toMatchObject({ id: 'risk-30d@1.0.0', aliases: ['champion'] });
    expect(p.score).toBeGreaterThan(0);
    expect(p.score).toBeLessThan(100);
    expect(p.explanationMethod).toBe('EXACT_LINEAR_SHAPLEY');
    expect(p.explanation).toHaveLength(3);
    const mags = p.explanation.map((c: { contribution: number }) => Math.abs(c.contribution));
    expect(mags).toEqual([...mags].sort((a, b) => b - a));
    expect(p.warnings).toEqual([]);
  });

  it('classifies urgency with probabilities summing to 1 and occlusion explanations', async ({ app, org }) => {
    const p = await score(app, org.provider, { model: 'symptom-urgency', features: urgencyFeatures(), topK: 5 });
    expect(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']).toContain(p.label);
    const sum = p.probabilities.reduce((s: number, c: { probability: number }) => s + c.probability, 0);
    expect(sum).toBeCloseTo(1, 4);
    expect(p.explanationMethod).toBe('OCCLUSION');
    expect(p.explanation.length).toBeLessThanOrEqual(5);
  });

  it('clips out-of-range values with a warning; a missing required feature is BAD_USER_INPUT', async ({ app, org }) => {
    const p = await score(app, org.service, { model: 'risk-30d', features: riskFeatures({ systolicBp: 400 }) });
    expect(p.warnings).toContain('systolicBp clipped to 220');
    const { age: _omit, ...rest } = riskFeatures();
    const r = await gql(app, org.service.token, SCORE, { input: { model: 'risk-30d', features: rest } });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'features.age' });
    const u = await gql(app, org.service.token, SCORE, { input: { model: 'no-such-model', features: rest } });
    expect(u.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('is idempotent by clientKey; a different request with the same key is a CONFLICT', async ({ app, org }) => {
    const input = { model: 'risk-30d', features: riskFeatures(), clientKey: 'k-1' };
    const a = await score(app, org.service, input);
    const b = await score(app, org.service, input);
    expect(b.id).toBe(a.id);
    const r = await gql(app, org.service.token, SCORE, { input: { ...input, features: riskFeatures({ age: 30 }) } });
    expect(r.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  it('concurrent scores share transactions without losing, repeating or misplacing an event', async ({ app, org }) => {
    const EVENTS = `subscription($s: ID!){ predictionEvents(subjectId:$s){ cursor prediction { id subjectId } } }`;
    const client = connect(app, org.provider);
    const subs = { 'g-1': await live(app, client, EVENTS, { s: 'g-1' }), 'g-2': await live(app, client, EVENTS, { s: 'g-2' }) };
    // 40 at once: two subjects, and 10 of them the same request with the same client key
    const keyed = { model: 'risk-30d', features: riskFeatures({ age: 61 }), subjectId: 'g-2', clientKey: 'burst-k' };
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        score(
          app,
          org.service,
          i % 4 === 3 ? keyed : { model: 'risk-30d', features: riskFeatures({ age: 40 + i }), subjectId: i % 2 ? 'g-2' : 'g-1' },
        ),
      ),
    );
    const keyedIds = new Set(results.filter((_, i) => i % 4 === 3).map((p) => p.id));
    expect(keyedIds.size).toBe(1);
    const stored = new Map<string, string[]>();
    for (const p of results) stored.set(p.subjectId, [...new Set([...(stored.get(p.subjectId) ?? []), p.id])]);
    expect(stored.get('g-1')).toHaveLength(20);
    expect(stored.get('g-2')).toHaveLength(11);
    for (const [subject, sub] of Object.entries(subs)) {
      const ids = stored.get(subject) as string[];
      await sub.waitFor(ids.length);
      await until(() => sub.items.length >= ids.length);
      const got = sub.items.map((x) => x.predictionEvents.prediction.id as string);
      expect(new Set(got)).toEqual(new Set(ids)); // each stored score once, on its own subject's stream
      expect(got).toHaveLength(ids.length);
      expect(new Set(sub.items.map((x) => x.predictionEvents.cursor)).size).toBe(ids.length);
    }
  });

  it('patients cannot score', async ({ app, org }) => {
    const r = await gql(app, org.patient.token, SCORE, { input: { model: 'risk-30d', features: riskFeatures() } });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('lists the models with feature specs, metrics and aliases', async ({ app, org }) => {
    const r = await gql(
      app,
      org.patient.token,
      `{ models { id name version aliases status task intendedUse fallback artifactSha256 featureSpec { name type unit required min max } metrics { name value dataset } } }`,
    );
    expect(r.errors).toBeUndefined();
    const risk = r.data.models.find((m: { id: string }) => m.id === 'risk-30d@1.0.0');
    expect(risk).toMatchObject({ status: 'ACTIVE', task: 'RISK_SCORE', aliases: ['champion'], fallback: 'lace@1' });
    expect(risk.intendedUse).toMatch(/not a medical device/);
    expect(risk.featureSpec.find((f: { name: string }) => f.name === 'age')).toMatchObject({
      type: 'INTEGER',
      unit: 'years',
      required: true,
    });
    expect(r.data.models.map((m: { id: string }) => m.id)).toContain('symptom-urgency@1.0.0');
  });
});

describe('predictions history', () => {
  const HISTORY = `query($s: ID!){ predictions(subjectId:$s, first: 10){ edges { node { id subjectId score } } } }`;
  it('clinicians see a subject’s predictions newest first; a patient only their own', async ({ app, org }) => {
    const other = await org.user('patient');
    const a = await score(app, org.service, { model: 'risk-30d', features: riskFeatures(), subjectId: org.patient.id });
    const b = await score(app, org.service, { model: 'risk-30d', features: riskFeatures({ age: 50 }), subjectId: org.patient.id });
    await score(app, org.service, { model: 'risk-30d', features: riskFeatures(), subjectId: other.id });
    const ids = async (token: string, s: string) =>
      ((await gql(app, token, HISTORY, { s })).data.predictions.edges as Array<{ node: { id: string } }>).map((e) => e.node.id);
    expect(await ids(org.provider.token, org.patient.id)).toEqual([b.id, a.id]);
    expect(await ids(org.patient.token, org.patient.id)).toEqual([b.id, a.id]);
    expect(await ids(org.patient.token, other.id)).toEqual([]);
    // another organisation's clinicians, admins and services see none of them
    const elsewhere = await seedOrg(app);
    for (const who of [elsewhere.provider, elsewhere.admin, elsewhere.service]) expect(await ids(who.token, org.patient.id)).toEqual([]);
  });
});

describe('shadow scoring', () => {
  it('the challenger scores the same request off the response path; it is stored, never returned or listed', async ({ app, org }) => {
    const p = await score(app, org.service, { model: 'risk-30d', features: riskFeatures(), subjectId: 'shadowed' });
    expect(p.modelVersion).toBe('1.0.0');
    const { shadowsOf } = await import('../../src/modules/predictions/repo.js');
    await until(async () => (await shadowsOf(app.container.database.db, org.orgId, p.id)).length === 1, 5_000, 'the shadow score');
    const [s] = await shadowsOf(app.container.database.db, org.orgId, p.id);
    expect(s).toMatchObject({ modelVersion: '1.1.0', producedBy: '1.1.0', subjectId: 'shadowed', fallback: false });
    expect(Math.abs((s!.score as number) - p.score)).toBeLessThan(10);
    const h = await gql(app, org.provider.token, `query{ predictions(subjectId:"shadowed"){ edges { node { id } } } }`);
    expect(h.data.predictions.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([p.id]);
    // naming a version explicitly is not shadowed
    const pinned = await score(app, org.service, { model: 'risk-30d@1.0.0', features: riskFeatures() });
    await new Promise((r) => setTimeout(r, 300));
    expect(await shadowsOf(app.container.database.db, org.orgId, pinned.id)).toEqual([]);
    const models = await gql(app, org.admin.token, `{ models { id aliases status } }`);
    expect(models.data.models).toContainEqual({ id: 'risk-30d@1.1.0', aliases: ['challenger'], status: 'SHADOW' });
  });
});
