// Synthetic generators with known ground truth, shared by the training script and the model tests.
// Nothing here is real patient data: every row is drawn from the documented distributions below.
import type { ACVPU } from '../src/modules/predictions/features.js';
import { URGENCY_CLASSES, type Urgency } from '../src/modules/predictions/fallbacks.js';

export const GENERATOR_VERSION = 1;

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (mu = 0, sd = 1) => {
    const u = Math.max(next(), 1e-12);
    return mu + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  const poisson = (lambda: number) => {
    const l = Math.exp(-lambda);
    let k = 0;
    let p = 1;
    do {
      k++;
      p *= next();
    } while (p > l);
    return k - 1;
  };
  return { next, normal, poisson, bernoulli: (p: number) => (next() < p ? 1 : 0) };
}

const clip = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export type RiskRow = {
  lengthOfStay: number;
  acuteAdmission: boolean;
  charlson: number;
  edVisits6m: number;
  age: number;
  egfr: number;
  systolicBp: number;
  heartRate: number;
  spo2: number;
  activeMedications: number;
  livesAlone: boolean;
  priorAdmissions12m: number;
};

/**
 * `risk-30d` ground truth (generator v1): logit = b0 + 0.08·min(LOS,14) + 0.5·acute + 0.22·Charlson
 * + 0.3·ED + 0.03·(age−65) − 0.015·(eGFR−75) + 0.02·(HR−80) − 0.08·(SpO₂−96) + 0.05·meds
 * + 0.4·livesAlone + 0.35·prior + 0.6·[age ≥ 75 ∧ Charlson ≥ 3]; b0 = −3.9 gives about 15 % prevalence.
 * Systolic BP carries no signal (a distractor). Label ~ Bernoulli(σ(logit)).
 */
export function riskLogit(r: RiskRow): number {
  return (
    -3.9 +
    0.08 * Math.min(r.lengthOfStay, 14) +
    0.5 * (r.acuteAdmission ? 1 : 0) +
    0.22 * r.charlson +
    0.3 * r.edVisits6m +
    0.03 * (r.age - 65) -
    0.015 * (r.egfr - 75) +
    0.02 * (r.heartRate - 80) -
    0.08 * (r.spo2 - 96) +
    0.05 * r.activeMedications +
    0.4 * (r.livesAlone ? 1 : 0) +
    0.35 * r.priorAdmissions12m +
    0.6 * (r.age >= 75 && r.charlson >= 3 ? 1 : 0)
  );
}

/** `n` rows of the risk generator with their true probability and a sampled label. */
export function riskData(n: number, seed: number): Array<{ row: RiskRow; p: number; y: number }> {
  const g = rng(seed);
  const out: Array<{ row: RiskRow; p: number; y: number }> = [];
  for (let i = 0; i < n; i++) {
    const age = Math.round(clip(g.normal(66, 14), 18, 100));
    const row: RiskRow = {
      lengthOfStay: clip(Math.floor(Math.exp(g.normal(1.3, 0.75))), 0, 60),
      acuteAdmission: g.next() < 0.6,
      charlson: clip(Math.round(Math.max(0, g.normal((age - 45) / 15, 1.6))), 0, 10),
      edVisits6m: clip(g.poisson(0.8), 0, 10),
      age,
      egfr: Math.round(clip(g.normal(75, 22), 5, 120)),
      systolicBp: Math.round(clip(g.normal(130, 20), 70, 220)),
      heartRate: Math.round(clip(g.normal(80, 14), 30, 180)),
      spo2: Math.round(clip(100 - Math.abs(g.normal(0, 3)), 70, 100)),
      activeMedications: clip(g.poisson(5), 0, 30),
      livesAlone: g.next() < 0.3,
      priorAdmissions12m: clip(g.poisson(0.7), 0, 10),
    };
    const p = sigmoid(riskLogit(row));
    out.push({ row, p, y: g.bernoulli(p) });
  }
  return out;
}

export type UrgencyRow = {
  respiratoryRate: number;
  spo2: number;
  spo2Scale2: boolean;
  onOxygen: boolean;
  systolicBp: number;
  pulse: number;
  consciousness: (typeof ACVPU)[number];
  temperature: number;
  chestPain: boolean;
  dyspnoea: boolean;
  bleeding: boolean;
  fever: boolean;
  severePain: boolean;
};

const b = (x: boolean) => (x ? 1 : 0);
const pos = (x: number) => Math.max(0, x);

/**
 * `symptom-urgency` ground truth (generator v1): an urgency score made of hinge terms on the vital
 * signs (NEWS2-like in direction, smooth instead of banded) plus symptom weights:
 * u = 0.35·(RR−20)⁺ + 0.8·(12−RR)⁺ + 0.5·(95−SpO₂)⁺ [scale 2: 0.5·(88−SpO₂)⁺] + 1.5·O₂ + 0.08·(110−SBP)⁺
 * + 0.05·(HR−90)⁺ + 0.1·(50−HR)⁺ + 3·[not ALERT] + 1.2·(T−38)⁺ + 1.5·(36−T)⁺ + 2.5·chest pain
 * + 1·dyspnoea + 2.5·bleeding + 0.7·fever + 1.5·severe pain. The label is drawn from an ordinal
 * logistic model on u: P(class ≥ k) = σ(1.5·(u − tₖ)) with thresholds t = 3 (MEDIUM), 6 (HIGH),
 * 9 (CRITICAL). The oracle predicts the most probable class under the true probabilities, so it is
 * the best any classifier can do and is not perfect either.
 */
export function urgencyScore(r: UrgencyRow): number {
  const sat = r.spo2Scale2 ? 0.5 * pos(88 - r.spo2) : 0.5 * pos(95 - r.spo2);
  return (
    0.35 * pos(r.respiratoryRate - 20) +
    0.8 * pos(12 - r.respiratoryRate) +
    sat +
    1.5 * b(r.onOxygen) +
    0.08 * pos(110 - r.systolicBp) +
    0.05 * pos(r.pulse - 90) +
    0.1 * pos(50 - r.pulse) +
    3 * b(r.consciousness !== 'ALERT') +
    1.2 * pos(r.temperature - 38) +
    1.5 * pos(36 - r.temperature) +
    2.5 * b(r.chestPain) +
    b(r.dyspnoea) +
    2.5 * b(r.bleeding) +
    0.7 * b(r.fever) +
    1.5 * b(r.severePain)
  );
}

const THRESHOLDS = [3, 6, 9];
const SLOPE = 1.5;

/** True class probabilities (LOW, MEDIUM, HIGH, CRITICAL) for urgency score u. */
export function urgencyProbabilities(u: number): number[] {
  const ge = [1, ...THRESHOLDS.map((t) => sigmoid(SLOPE * (u - t))), 0];
  return URGENCY_CLASSES.map((_, k) => (ge[k] as number) - (ge[k + 1] as number));
}

/** The Bayes-optimal class: the most probable under the true probabilities. */
export function urgencyOracle(u: number): Urgency {
  const p = urgencyProbabilities(u);
  return URGENCY_CLASSES[p.indexOf(Math.max(...p))] as Urgency;
}

/** `n` rows of the urgency generator: the oracle's class and the sampled label. */
export function urgencyData(n: number, seed: number): Array<{ row: UrgencyRow; oracle: Urgency; y: Urgency }> {
  const g = rng(seed);
  const out: Array<{ row: UrgencyRow; oracle: Urgency; y: Urgency }> = [];
  const conscious = (unwell: boolean): UrgencyRow['consciousness'] => {
    const u = g.next();
    if (!unwell) return u < 0.99 ? 'ALERT' : 'CONFUSION';
    return u < 0.85 ? 'ALERT' : u < 0.92 ? 'CONFUSION' : u < 0.96 ? 'VOICE' : u < 0.99 ? 'PAIN' : 'UNRESPONSIVE';
  };
  for (let i = 0; i < n; i++) {
    const unwell = g.next() < 0.45;
    const sym = unwell ? [0.2, 0.3, 0.08, 0.3, 0.2] : [0.05, 0.05, 0.02, 0.05, 0.05];
    const row: UrgencyRow = {
      respiratoryRate: Math.round(clip(unwell ? g.normal(23, 5) : g.normal(16, 2.5), 4, 60)),
      spo2: Math.round(clip(100 - Math.abs(g.normal(0, unwell ? 5 : 1.5)), 70, 100)),
      spo2Scale2: g.next() < 0.05,
      onOxygen: g.next() < (unwell ? 0.35 : 0.05),
      systolicBp: Math.round(clip(unwell ? g.normal(108, 22) : g.normal(125, 15), 50, 250)),
      pulse: Math.round(clip(unwell ? g.normal(102, 20) : g.normal(78, 10), 20, 220)),
      consciousness: conscious(unwell),
      temperature: Math.round(clip(unwell ? g.normal(37.8, 1.1) : g.normal(36.9, 0.4), 32, 43) * 10) / 10,
      chestPain: g.next() < (sym[0] as number),
      dyspnoea: g.next() < (sym[1] as number),
      bleeding: g.next() < (sym[2] as number),
      fever: g.next() < (sym[3] as number),
      severePain: g.next() < (sym[4] as number),
    };
    const u = urgencyScore(row);
    const p = urgencyProbabilities(u);
    let draw = g.next();
    let k = 0;
    while (k < p.length - 1 && draw >= (p[k] as number)) draw -= p[k++] as number;
    const oracle = urgencyOracle(u);
    const y = URGENCY_CLASSES[k] as Urgency;
    out.push({ row, oracle, y });
  }
  return out;
}

/** Area under the ROC curve (rank statistic; ties count half). */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let rankSumPos = 0;
  let nPos = 0;
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1] as number] === scores[idx[i] as number]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++)
      if (labels[idx[k] as number] === 1) {
        rankSumPos += avgRank;
        nPos++;
      }
    i = j + 1;
  }
  const nNeg = idx.length - nPos;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Expected calibration error over `bins` equal-width probability bins. */
export function ece(probs: ArrayLike<number>, labels: ArrayLike<number>, bins = 10): number {
  const sumP = new Array(bins).fill(0);
  const sumY = new Array(bins).fill(0);
  const cnt = new Array(bins).fill(0);
  for (let i = 0; i < probs.length; i++) {
    const k = Math.min(bins - 1, Math.floor((probs[i] as number) * bins));
    sumP[k] += probs[i] as number;
    sumY[k] += labels[i] as number;
    cnt[k]++;
  }
  let e = 0;
  for (let k = 0; k < bins; k++) if (cnt[k] > 0) e += (cnt[k] / probs.length) * Math.abs(sumP[k] / cnt[k] - sumY[k] / cnt[k]);
  return e;
}

/** Macro-averaged F1 over `classes`. */
export function macroF1(pred: readonly string[], truth: readonly string[], classes: readonly string[]): number {
  let sum = 0;
  for (const c of classes) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < pred.length; i++) {
      if (pred[i] === c && truth[i] === c) tp++;
      else if (pred[i] === c) fp++;
      else if (truth[i] === c) fn++;
    }
    sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return sum / classes.length;
}
