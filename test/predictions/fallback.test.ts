// A model whose artifact does not match its card: the instance stays ready but degraded, and every
// result is answered by the fallback rule, flagged with why.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { withApp } from '../harness/fixtures.js';
import { defaultModelsDir } from '../../src/modules/predictions/module.js';
import { gql } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';
import { startApp } from '../harness/start-app.js';
import { SCORE, metric, metricsText, riskFeatures, score, urgencyFeatures } from './ops.js';

const dir = mkdtempSync(join(tmpdir(), 'wardline-models-'));
cpSync(defaultModelsDir(), dir, { recursive: true });
writeFileSync(join(dir, 'risk-30d/1.0.0/weights.bin'), Buffer.alloc(64)); // checksum no longer matches the card
const it = withApp({ PREDICTIONS_MODELS_DIR: dir });

describe('a model that fails to load', () => {
  it('is answered by LACE, flagged in the result, with rule-point explanations', async ({ app, org }) => {
    const p = await score(app, org.service, { model: 'risk-30d', features: riskFeatures() });
    expect(p).toMatchObject({
      fallback: true,
      fallbackReason: 'MODEL_NOT_LOADED',
      modelVersion: 'lace@1',
      explanationMethod: 'RULE_POINTS',
    });
    // LACE: L=4 (5 days), A=3, C=3, E=1 → 11 → 100·σ(0.3·11 − 4)
    expect(p.score).toBeCloseTo(100 / (1 + Math.exp(-(0.3 * 11 - 4))), 1);
    expect(p.explanation.map((c: { feature: string }) => c.feature)).toEqual(['lengthOfStay', 'acuteAdmission', 'charlson']);
    const u = await score(app, org.service, { model: 'symptom-urgency', features: urgencyFeatures() });
    expect(u.fallback).toBe(false); // the other model is unaffected

    // metrics: fallbacks by model and reason, inference latency by model and backend, what loaded
    const text = await metricsText(app);
    const { backend } = await app.container.services.predictions.health();
    expect(metric(text, 'wardline_prediction_fallback_total', { model: 'risk-30d', reason: 'model_not_loaded' })).toBe(1);
    expect(metric(text, 'wardline_prediction_fallback_total', { model: 'symptom-urgency' })).toBeUndefined();
    expect(
      metric(text, 'wardline_inference_seconds_count', { model: 'symptom-urgency', version: '1.0.0', mode: 'realtime', backend }),
    ).toBe(1);
    expect(metric(text, 'wardline_model_loaded', { model: 'risk-30d', version: '1.0.0', backend })).toBe(0);
    expect(metric(text, 'wardline_model_loaded', { model: 'symptom-urgency', version: '1.0.0', backend })).toBe(1);
  });

  it('shows as degraded (still ready) in /health/ready and FAILED_TO_LOAD in `models`', async ({ app }) => {
    const res = await fetch(`http://127.0.0.1:${app.port}/health/ready`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body).toMatchObject({ status: 'degraded', checks: { models: 'degraded' }, models: { failed: ['risk-30d@1.0.0'] } });
    const list = await app.container.services.predictions.listModels();
    expect(list.find((m) => m.name === 'risk-30d')?.status).toBe('failed_to_load');
  });
});

describe('a models directory without model cards (e.g. left out of a deployment)', () => {
  it('shows as degraded (still ready) in /health/ready, and `score` names the unknown model', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'wardline-no-models-'));
    const app = await startApp({ env: { PREDICTIONS_MODELS_DIR: empty } });
    try {
      const res = await fetch(`http://127.0.0.1:${app.port}/health/ready`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: 'degraded',
        checks: { models: 'degraded' },
        models: { status: 'degraded', failed: [], error: 'no model cards found' },
      });
      const org = await seedOrg(app);
      const r = await gql(app, org.service.token, SCORE, { input: { model: 'risk-30d', features: riskFeatures() } });
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'model' });
    } finally {
      await app.stop();
    }
  });
});
