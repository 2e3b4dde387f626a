// The committed artifacts (models/<name>/<version>) against their cards and the generators' ground
// truth. Inference only: CI never retrains (npm run models:train does).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auc, ece, macroF1, riskData, urgencyData } from '../../scripts/synth.js';
import type { ModelCard } from '../../src/modules/predictions/card.js';
import { checkRow } from '../../src/modules/predictions/features.js';
import { URGENCY_CLASSES, laceScore, news2Urgency } from '../../src/modules/predictions/fallbacks.js';
import { type ModelSet, loadModels } from '../../src/modules/predictions/models.js';
import { defaultModelsDir } from '../../src/modules/predictions/module.js';
import { sha256 } from '../../src/modules/predictions/runtime.js';
import { scoreRows } from '../../src/modules/predictions/scorer.js';
import { createLogger } from '../../src/shared/logger.js';

let set: ModelSet;
beforeAll(async () => {
  set = await loadModels(defaultModelsDir(), (process.env.PREDICTIONS_BACKEND as 'auto') ?? 'auto', createLogger('silent'));
});
afterAll(() => set.dispose());

const clean = (card: ModelCard, row: unknown) => {
  const c = checkRow(card.featureSpec, row);
  if (!c.ok) throw new Error(c.error);
  return c.row;
};
const metric = (card: ModelCard, name: string) => card.metrics.find((m) => m.name === name)?.value as number;
const model = (name: string, version = '1.0.0') => set.all().find((m) => m.card.name === name && m.card.version === version)!;
const noExplain = { explain: false, topK: 3 };

describe('committed model artifacts', () => {
  it('load and verify on this process’s backend, and their weights match the card checksum', () => {
    expect(['wasm', 'cpu', 'tensorflow']).toContain(set.backend);
    expect(
      set
        .all()
        .map((m) => m.id)
        .sort(),
    ).toEqual(['risk-30d@1.0.0', 'risk-30d@1.1.0', 'symptom-urgency@1.0.0']);
    for (const m of set.all()) {
      expect(m.status, m.error).toBe('loaded');
      expect(sha256(readFileSync(join(m.dir, 'weights.bin')))).toBe(m.card.weightsSha256);
      expect(m.card.intendedUse).toMatch(/not a medical device/);
    }
  });

  it.each(['1.0.0', '1.1.0'])(
    'risk-30d@%s: AUC within 0.02 of the oracle, at least 0.03 above LACE, calibration error ≤ 0.03',
    (version) => {
      const m = model('risk-30d', version);
      const test = riskData(m.card.trainingData.testRows, m.card.trainingData.testSeed);
      const rows = test.map((d) => clean(m.card, d.row));
      const out = scoreRows(set.tf, m, m.card, rows, noExplain);
      const p = out.map((o) => (o.score as number) / 100);
      const y = test.map((d) => d.y);
      const a = auc(p, y);
      const oracle = auc(
        test.map((d) => d.p),
        y,
      );
      const lace = auc(
        rows.map((r) => laceScore(r).score),
        y,
      );
      expect(a).toBeGreaterThanOrEqual(oracle - 0.02);
      expect(a).toBeGreaterThanOrEqual(lace + 0.03);
      expect(ece(p, y)).toBeLessThanOrEqual(0.03);
      // the card states what this test measures (backends agree to well under the rounding)
      expect(a).toBeCloseTo(metric(m.card, 'AUC'), 3);
      expect(oracle).toBeCloseTo(metric(m.card, 'ORACLE_AUC'), 6);
    },
  );

  it('symptom-urgency: macro-F1 within 0.035 of the oracle and clearly above NEWS2', () => {
    const m = model('symptom-urgency');
    const test = urgencyData(m.card.trainingData.testRows, m.card.trainingData.testSeed);
    const rows = test.map((d) => clean(m.card, d.row));
    const out = scoreRows(set.tf, m, m.card, rows, noExplain);
    const y = test.map((d) => d.y);
    const f1 = macroF1(
      out.map((o) => o.label as string),
      y,
      URGENCY_CLASSES,
    );
    const oracle = macroF1(
      test.map((d) => d.oracle),
      y,
      URGENCY_CLASSES,
    );
    const news2 = macroF1(
      rows.map((r) => news2Urgency(r).label),
      y,
      URGENCY_CLASSES,
    );
    expect(f1).toBeGreaterThanOrEqual(oracle - 0.035);
    expect(f1).toBeGreaterThanOrEqual(news2 + 0.1);
    expect(f1).toBeCloseTo(metric(m.card, 'MACRO_F1'), 2);
  });

  it('logistic explanations are exact: all contributions add up to logit(p) minus the intercept', () => {
    const m = model('risk-30d');
    const bias = m.layers!.layers[0]!.getWeights()[1]!.dataSync()[0] as number;
    const rows = riskData(50, 7).map((d) => clean(m.card, d.row));
    const out = scoreRows(set.tf, m, m.card, rows, { explain: true, topK: 10 });
    const all = scoreRows(set.tf, m, m.card, rows, { explain: true, topK: 12 });
    for (const [i, o] of all.entries()) {
      const p = (o.score as number) / 100;
      const sum = o.explanation.reduce((s, c) => s + c.contribution, 0);
      expect(sum).toBeCloseTo(Math.log(p / (1 - p)) - bias, 2); // score is rounded to 0.01 %
      expect(out[i]!.explanation).toEqual(o.explanation.slice(0, 10));
    }
  });

  it('leaks no tensors across 1,000 scores with explanations', () => {
    const risk = model('risk-30d');
    const urgency = model('symptom-urgency');
    const r = riskData(1, 9).map((d) => clean(risk.card, d.row));
    const u = urgencyData(1, 9).map((d) => clean(urgency.card, d.row));
    scoreRows(set.tf, risk, risk.card, r, { explain: true, topK: 3 });
    scoreRows(set.tf, urgency, urgency.card, u, { explain: true, topK: 3 });
    const before = set.numTensors();
    for (let i = 0; i < 500; i++) {
      scoreRows(set.tf, risk, risk.card, r, { explain: true, topK: 3 });
      scoreRows(set.tf, urgency, urgency.card, u, { explain: true, topK: 3 });
    }
    expect(set.numTensors()).toBe(before);
  });
});
