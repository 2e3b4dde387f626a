// A model whose artifact does not match its card: the instance stays ready but degraded, and every
// result is answered by the fallback rule, flagged with why.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { withApp } from '../harness/fixtures.js';
import { defaultModelsDir } from '../../src/modules/predictions/module.js';
import { riskFeatures, score, urgencyFeatures } from './ops.js';

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
