import { describe, expect } from 'vitest';
import { connect, gql, live, settled, until } from '../harness/clients.js';
import { it } from '../harness/fixtures.js';
import { riskFeatures, score } from './ops.js';

const CREATE = `mutation($input: RiskRuleInput!){ createRiskRule(input:$input){ id model enterAt exitAt cooldownSeconds subjectIds } }`;
const ALERTS = `subscription($r: ID!, $a: String){ riskAlerts(ruleId:$r, after:$a){ cursor at ruleId subjectId direction from to prediction { id score } } }`;

// two feature sets whose risk is far apart: "high" well above "low"
const HIGH = riskFeatures({ age: 92, charlson: 8, edVisits6m: 6, priorAdmissions12m: 5, lengthOfStay: 20 });
const LOW = riskFeatures({
  age: 30,
  charlson: 0,
  edVisits6m: 0,
  priorAdmissions12m: 0,
  lengthOfStay: 1,
  acuteAdmission: false,
  livesAlone: false,
});

describe('risk alerts (threshold, hysteresis, cooldown)', () => {
  it('tells only crossings, not every re-score, and resumes by cursor without missing one', async ({ app, org }) => {
    const hi = (await score(app, org.service, { model: 'risk-30d', features: HIGH })).score as number;
    const lo = (await score(app, org.service, { model: 'risk-30d', features: LOW })).score as number;
    expect(hi - lo).toBeGreaterThan(20);
    const enterAt = (hi + lo) / 2 + 5;
    const exitAt = (hi + lo) / 2 - 5;
    const r = await gql(app, org.provider.token, CREATE, { input: { model: 'risk-30d', enterAt, exitAt, subjectIds: ['pat-1', 'pat-2'] } });
    expect(r.errors).toBeUndefined();
    const ruleId = r.data.createRiskRule.id as string;

    const client = connect(app, org.provider);
    const sub = await live(app, client, ALERTS, { r: ruleId });
    const s = (subjectId: string, features: unknown) => score(app, org.service, { model: 'risk-30d', features, subjectId });
    await s('pat-1', LOW); // below: nothing
    await s('pat-1', HIGH); // entered
    await s('pat-1', HIGH); // still high: nothing
    await s('pat-3', HIGH); // not in the cohort: nothing
    await sub.waitFor(1);
    const first = sub.items[0].riskAlerts;
    expect(first).toMatchObject({ subjectId: 'pat-1', direction: 'ENTERED', to: hi });
    sub.stop();
    await settled(app);

    // while nobody listens: exit, enter again, and pat-2 enters
    await s('pat-1', LOW);
    await s('pat-1', HIGH);
    await s('pat-2', HIGH);
    const resumed = await live(app, connect(app, org.provider), ALERTS, { r: ruleId, a: first.cursor });
    await resumed.waitFor(3);
    await until(() => resumed.items.length >= 3);
    expect(resumed.items.map((i) => [i.riskAlerts.subjectId, i.riskAlerts.direction])).toEqual([
      ['pat-1', 'EXITED'],
      ['pat-1', 'ENTERED'],
      ['pat-2', 'ENTERED'],
    ]);
    await settled(app);
  });

  it('a cooldown suppresses a re-entry soon after the last one', async ({ app, org }) => {
    const hi = (await score(app, org.service, { model: 'risk-30d', features: HIGH })).score as number;
    const lo = (await score(app, org.service, { model: 'risk-30d', features: LOW })).score as number;
    const mid = (hi + lo) / 2;
    const r = await gql(app, org.admin.token, CREATE, { input: { model: 'risk-30d', enterAt: mid, exitAt: mid, cooldownSeconds: 3600 } });
    const ruleId = r.data.createRiskRule.id as string;
    const sub = await live(app, connect(app, org.admin), ALERTS, { r: ruleId });
    const s = (features: unknown) => score(app, org.service, { model: 'risk-30d', features, subjectId: 'pat-9' });
    await s(HIGH);
    await s(LOW);
    await s(HIGH); // within the cooldown: not told
    await s(LOW); // still low (the entry was suppressed): nothing to exit
    await sub.waitFor(2);
    await new Promise((res) => setTimeout(res, 500));
    expect(sub.items.map((i) => i.riskAlerts.direction)).toEqual(['ENTERED', 'EXITED']);
    await settled(app);
  });

  it('exitAt above enterAt is BAD_USER_INPUT; patients cannot watch risk', async ({ app, org }) => {
    const bad = await gql(app, org.provider.token, CREATE, { input: { model: 'risk-30d', enterAt: 50, exitAt: 60 } });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'exitAt' });
    const p = await gql(app, org.patient.token, CREATE, { input: { model: 'risk-30d', enterAt: 60, exitAt: 50 } });
    expect(p.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('predictionEvents', () => {
  const EVENTS = `subscription($s: ID!, $a: String){ predictionEvents(subjectId:$s, after:$a){ cursor at prediction { id subjectId score } } }`;
  it('pushes every stored score of a subject live and resumes by cursor; a patient watches only their own', async ({ app, org }) => {
    const sub = await live(app, connect(app, org.provider), EVENTS, { s: org.patient.id });
    const a = await score(app, org.service, { model: 'risk-30d', features: HIGH, subjectId: org.patient.id });
    await sub.waitFor(1);
    expect(sub.items[0].predictionEvents.prediction).toMatchObject({ id: a.id, subjectId: org.patient.id });
    const b = await score(app, org.service, { model: 'risk-30d', features: LOW, subjectId: org.patient.id });
    const mine = await live(app, connect(app, org.patient), EVENTS, { s: org.patient.id, a: sub.items[0].predictionEvents.cursor });
    await mine.waitFor(1);
    expect(mine.items[0].predictionEvents.prediction.id).toBe(b.id);
    const other = await org.user('patient');
    const denied = await live(app, connect(app, other), EVENTS, { s: org.patient.id });
    await denied.ended();
    expect((denied.errors.flat() as Array<{ extensions?: { code?: string } }>)[0]?.extensions?.code).toBe('FORBIDDEN');
    await settled(app);
  });
});
