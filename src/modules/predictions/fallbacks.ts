import type { CleanRow } from './features.js';

/** Points per input of a rule, for RULE_POINTS explanations. */
export interface RulePoints {
  feature: string;
  points: number;
}

export const URGENCY_CLASSES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Urgency = (typeof URGENCY_CLASSES)[number];

const num = (row: CleanRow, k: string, dflt = 0) => (typeof row[k] === 'number' ? (row[k] as number) : dflt);

/**
 * The LACE index (van Walraven et al., CMAJ 2010): Length of stay 0–7, Acute admission 0/3,
 * Charlson 0–5, ED visits 0–4; total 0–19, ≥ 10 is "high risk".
 */
export function lacePoints(row: CleanRow): RulePoints[] {
  const los = num(row, 'lengthOfStay');
  const l = los < 1 ? 0 : los <= 3 ? los : los <= 6 ? 4 : los <= 13 ? 5 : 7;
  const a = num(row, 'acuteAdmission') ? 3 : 0;
  const ch = num(row, 'charlson');
  const c = ch >= 4 ? 5 : ch;
  const e = Math.min(4, num(row, 'edVisits6m'));
  return [
    { feature: 'lengthOfStay', points: l },
    { feature: 'acuteAdmission', points: a },
    { feature: 'charlson', points: c },
    { feature: 'edVisits6m', points: e },
  ];
}

/**
 * `lace@1`: the LACE total mapped to 0–100 by the fixed curve 100·σ(0.3·LACE − 4) (LACE 0 → 1.8,
 * 10 → 26.9, 19 → 85.1). The mapping is monotone, so it ranks exactly like LACE.
 */
export function laceScore(row: CleanRow): { score: number; points: RulePoints[] } {
  const points = lacePoints(row);
  const total = points.reduce((s, p) => s + p.points, 0);
  return { score: 100 / (1 + Math.exp(-(0.3 * total - 4))), points };
}

/** NEWS2 parameter scores (Royal College of Physicians, 2017). Missing optional inputs score 0. */
export function news2Points(row: CleanRow): RulePoints[] {
  const rr = num(row, 'respiratoryRate', 16);
  const spo2 = num(row, 'spo2', 98);
  const o2 = num(row, 'onOxygen') === 1;
  const scale2 = num(row, 'spo2Scale2') === 1;
  const sbp = num(row, 'systolicBp', 120);
  const hr = num(row, 'pulse', 70);
  const temp = num(row, 'temperature', 37);
  const rrP = rr <= 8 ? 3 : rr <= 11 ? 1 : rr <= 20 ? 0 : rr <= 24 ? 2 : 3;
  let spP: number;
  if (!scale2) spP = spo2 <= 91 ? 3 : spo2 <= 93 ? 2 : spo2 <= 95 ? 1 : 0;
  else if (spo2 <= 83) spP = 3;
  else if (spo2 <= 85) spP = 2;
  else if (spo2 <= 87) spP = 1;
  else if (spo2 <= 92 || !o2) spP = 0;
  else spP = spo2 <= 94 ? 1 : spo2 <= 96 ? 2 : 3;
  const sbpP = sbp <= 90 ? 3 : sbp <= 100 ? 2 : sbp <= 110 ? 1 : sbp <= 219 ? 0 : 3;
  const hrP = hr <= 40 ? 3 : hr <= 50 ? 1 : hr <= 90 ? 0 : hr <= 110 ? 1 : hr <= 130 ? 2 : 3;
  const cP = row.consciousness === undefined || row.consciousness === 'ALERT' ? 0 : 3;
  const tP = temp <= 35 ? 3 : temp <= 36 ? 1 : temp <= 38 ? 0 : temp <= 39 ? 1 : 2;
  return [
    { feature: 'respiratoryRate', points: rrP },
    { feature: 'spo2', points: spP },
    { feature: 'onOxygen', points: o2 ? 2 : 0 },
    { feature: 'systolicBp', points: sbpP },
    { feature: 'pulse', points: hrP },
    { feature: 'consciousness', points: cP },
    { feature: 'temperature', points: tP },
  ];
}

/**
 * `news2@1`: the NEWS2 clinical-risk bands as urgency. Aggregate 0–4 → LOW; 5–6 or any single
 * parameter scoring 3 → MEDIUM; ≥ 7 → HIGH. CRITICAL is a Wardline rule, not an RCP category:
 * aggregate ≥ 9, or ≥ 7 with a consciousness level other than ALERT.
 */
export function news2Urgency(row: CleanRow): { label: Urgency; total: number; points: RulePoints[] } {
  const points = news2Points(row);
  const total = points.reduce((s, p) => s + p.points, 0);
  const red = points.some((p) => p.points === 3);
  const altered = (points.find((p) => p.feature === 'consciousness')?.points ?? 0) > 0;
  const label: Urgency = total >= 9 || (total >= 7 && altered) ? 'CRITICAL' : total >= 7 ? 'HIGH' : total >= 5 || red ? 'MEDIUM' : 'LOW';
  return { label, total, points };
}

/** A fallback rule's identity, as results name it in `modelVersion`. */
export const FALLBACKS = { 'risk-30d': 'lace@1', 'symptom-urgency': 'news2@1' } as const;
