import type { EncodedColumn, FeatureSpec } from './card.js';

const f = (s: Omit<FeatureSpec, 'categories' | 'unit'> & { unit?: string; categories?: string[] }): FeatureSpec => ({
  unit: null,
  categories: null,
  ...s,
});

/** Inputs of `risk-30d`: the four LACE components plus vitals, labs and social factors. */
export const RISK_FEATURES: FeatureSpec[] = [
  f({
    name: 'lengthOfStay',
    type: 'integer',
    unit: 'days',
    required: true,
    min: 0,
    max: 60,
    description: 'Length of the index stay (LACE "L").',
  }),
  f({
    name: 'acuteAdmission',
    type: 'boolean',
    required: true,
    min: null,
    max: null,
    description: 'Emergent (acute) admission (LACE "A").',
  }),
  f({ name: 'charlson', type: 'integer', required: true, min: 0, max: 10, description: 'Charlson comorbidity index (LACE "C").' }),
  f({
    name: 'edVisits6m',
    type: 'integer',
    unit: 'visits',
    required: true,
    min: 0,
    max: 10,
    description: 'Emergency department visits in the 6 months before admission (LACE "E").',
  }),
  f({ name: 'age', type: 'integer', unit: 'years', required: true, min: 18, max: 100, description: 'Age at discharge.' }),
  f({
    name: 'egfr',
    type: 'number',
    unit: 'mL/min/1.73m²',
    required: false,
    min: 5,
    max: 120,
    description: 'Estimated glomerular filtration rate.',
  }),
  f({
    name: 'systolicBp',
    type: 'number',
    unit: 'mmHg',
    required: false,
    min: 70,
    max: 220,
    description: 'Systolic blood pressure at discharge.',
  }),
  f({ name: 'heartRate', type: 'number', unit: 'beats/min', required: false, min: 30, max: 180, description: 'Heart rate at discharge.' }),
  f({ name: 'spo2', type: 'number', unit: '%', required: false, min: 70, max: 100, description: 'Oxygen saturation at discharge.' }),
  f({
    name: 'activeMedications',
    type: 'integer',
    unit: 'medications',
    required: false,
    min: 0,
    max: 30,
    description: 'Active medications at discharge.',
  }),
  f({ name: 'livesAlone', type: 'boolean', required: false, min: null, max: null, description: 'Lives alone.' }),
  f({
    name: 'priorAdmissions12m',
    type: 'integer',
    unit: 'admissions',
    required: false,
    min: 0,
    max: 10,
    description: 'Admissions in the 12 months before this one.',
  }),
];

export const ACVPU = ['ALERT', 'CONFUSION', 'VOICE', 'PAIN', 'UNRESPONSIVE'] as const;

/** Inputs of `symptom-urgency`: NEWS2 vital signs plus structured symptom flags. */
export const URGENCY_FEATURES: FeatureSpec[] = [
  f({ name: 'respiratoryRate', type: 'number', unit: 'breaths/min', required: true, min: 4, max: 60, description: 'Respiration rate.' }),
  f({ name: 'spo2', type: 'number', unit: '%', required: true, min: 70, max: 100, description: 'Oxygen saturation.' }),
  f({
    name: 'spo2Scale2',
    type: 'boolean',
    required: false,
    min: null,
    max: null,
    description: 'Use NEWS2 SpO₂ scale 2 (hypercapnic respiratory failure, target 88–92 %).',
  }),
  f({ name: 'onOxygen', type: 'boolean', required: true, min: null, max: null, description: 'Receiving supplemental oxygen.' }),
  f({ name: 'systolicBp', type: 'number', unit: 'mmHg', required: true, min: 50, max: 250, description: 'Systolic blood pressure.' }),
  f({ name: 'pulse', type: 'number', unit: 'beats/min', required: true, min: 20, max: 220, description: 'Pulse rate.' }),
  f({
    name: 'consciousness',
    type: 'category',
    required: true,
    min: null,
    max: null,
    categories: [...ACVPU],
    description: 'ACVPU level (CONFUSION = new confusion).',
  }),
  f({ name: 'temperature', type: 'number', unit: '°C', required: true, min: 32, max: 43, description: 'Body temperature.' }),
  f({ name: 'chestPain', type: 'boolean', required: false, min: null, max: null, description: 'Reports chest pain.' }),
  f({ name: 'dyspnoea', type: 'boolean', required: false, min: null, max: null, description: 'Reports shortness of breath.' }),
  f({ name: 'bleeding', type: 'boolean', required: false, min: null, max: null, description: 'Reports active bleeding.' }),
  f({ name: 'fever', type: 'boolean', required: false, min: null, max: null, description: 'Reports fever or rigors.' }),
  f({ name: 'severePain', type: 'boolean', required: false, min: null, max: null, description: 'Reports severe pain (7/10 or more).' }),
];

/** A row after validation: numbers for numeric and boolean features (0/1), strings for categories. */
export type CleanRow = Record<string, number | string | undefined>;

/** The outcome of checking one row against a feature spec. */
export type Checked = { ok: true; row: CleanRow; warnings: string[] } | { ok: false; error: string; field: string };

/**
 * Validates a row against the spec: a missing required feature or a wrong type is an error;
 * an out-of-range number is clipped to [min, max] with a warning; a missing optional feature is
 * left undefined (imputed with the training mean when encoded); unknown keys are ignored with a warning.
 */
export function checkRow(spec: readonly FeatureSpec[], input: unknown): Checked {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    return { ok: false, error: 'features: expected an object', field: 'features' };
  const raw = input as Record<string, unknown>;
  const row: CleanRow = {};
  const warnings: string[] = [];
  for (const s of spec) {
    const v = raw[s.name];
    if (v === undefined || v === null) {
      if (s.required) return { ok: false, error: `features.${s.name}: required`, field: `features.${s.name}` };
      continue;
    }
    if (s.type === 'category') {
      if (typeof v !== 'string' || !s.categories?.includes(v))
        return { ok: false, error: `features.${s.name}: expected one of ${s.categories?.join(', ')}`, field: `features.${s.name}` };
      row[s.name] = v;
    } else if (s.type === 'boolean') {
      if (typeof v !== 'boolean') return { ok: false, error: `features.${s.name}: expected true or false`, field: `features.${s.name}` };
      row[s.name] = v ? 1 : 0;
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v))
        return { ok: false, error: `features.${s.name}: expected a number`, field: `features.${s.name}` };
      let x = v;
      if (s.min !== null && x < s.min) x = s.min;
      if (s.max !== null && x > s.max) x = s.max;
      if (x !== v) warnings.push(`${s.name} clipped to ${x}`);
      row[s.name] = x;
    }
  }
  for (const k of Object.keys(raw)) if (!spec.some((s) => s.name === k)) warnings.push(`${k} is not a feature of this model (ignored)`);
  return { ok: true, row, warnings };
}

/** The model's input columns for a spec (categories one-hot), without statistics. */
export function columnsOf(spec: readonly FeatureSpec[]): Array<{ feature: string; category?: string }> {
  return spec.flatMap((s) =>
    s.type === 'category' ? (s.categories ?? []).map((c) => ({ feature: s.name, category: c })) : [{ feature: s.name }],
  );
}

/** Raw (unstandardised) value of one column for a clean row; undefined when the feature is missing. */
export function rawColumn(row: CleanRow, col: { feature: string; category?: string }): number | undefined {
  const v = row[col.feature];
  if (v === undefined) return undefined;
  if (col.category !== undefined) return v === col.category ? 1 : 0;
  return v as number;
}

/** Writes the standardised columns of `row` into `out` at `offset` (missing → 0, the training mean). */
export function encodeInto(out: Float32Array, offset: number, row: CleanRow, columns: readonly EncodedColumn[]): void {
  for (let j = 0; j < columns.length; j++) {
    const c = columns[j] as EncodedColumn;
    const x = rawColumn(row, c);
    out[offset + j] = x === undefined ? 0 : (x - c.mean) / c.std;
  }
}
