// What the audit log records: reads, writes and subscription starts and stops of patient data, over
// HTTP and over graphql-ws, for every domain (messaging, notifications, alerts, reminders, calls,
// predictions) — ids only, never contents — and that every root field of the schema is audited
// unless it is listed as touching no patient data.
import { randomUUID } from 'node:crypto';
import { isObjectType } from 'graphql';
import { describe, expect } from 'vitest';
import { NOT_AUDITED, policyOf } from '../../src/modules/audit/policy.js';
import { buildSchema } from '../../src/graphql/schema.js';
import { RAISE, ACK, LIST as ALERTS } from '../alerts/ops.js';
import { CREATE as CREATE_REMINDER, LIST as REMINDERS, CANCEL as CANCEL_REMINDER } from '../reminders/ops.js';
import { ACCEPT, CALL, END, START, EVENTS as CALL_EVENTS, overSocket } from '../calls/ops.js';
import { collect, connect, gql, live, settled, until } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import { seedOrg, token } from '../harness/seed.js';
import { EVENTS, SEND, conversation, send } from '../messaging/ops.js';
import { BATCH, riskFeatures, riskRows, score, scoringWorker, submit } from '../predictions/ops.js';
import { auditRows, ofField } from './ops.js';

const it = withApp({ AUDIT_FLUSH_MS: '50' });

it.afterEach(({ app }) => settled(app));

describe('audit rows over HTTP', () => {
  it('messaging: who, what and the outcome of reads and writes; ids, never the body', async ({ app }) => {
    const org = await seedOrg(app);
    const body = `private body ${randomUUID()}`;
    const c = await conversation(app, org.provider, [org.patient]);
    const m = await send(app, org.provider, c, body);
    const read = await gql(
      app,
      org.patient.token,
      `query History($id: ID!){ conversation(id: $id){ id messages(first: 10){ edges { node { id body } } } } }`,
      { id: c },
    );
    expect(read.data.conversation.messages.edges[0].node.body).toBe(body);
    const outsider = await org.user('patient');
    const refused = await gql(app, outsider.token, SEND, { c, b: body });
    expect(refused.errors?.[0]?.extensions?.code).toMatch(/FORBIDDEN|NOT_FOUND/);
    await gql(app, org.patient.token, '{ me { id } models { id } }'); // not patient data: not recorded

    const rows = await auditRows(app, org.orgId);
    const [created] = ofField(rows, 'createConversation');
    expect(created).toMatchObject({
      operation: 'mutation',
      objectType: 'Conversation',
      outcome: 'ok',
      userId: org.provider.id,
      role: 'provider',
    });
    expect(created?.objectIds).toEqual(expect.arrayContaining([c, org.patient.id]));
    const sent = ofField(rows, 'sendMessage');
    expect(sent[0]).toMatchObject({
      operation: 'mutation',
      objectType: 'Message',
      userId: org.provider.id,
      orgId: org.orgId,
      transport: 'http',
      socketId: null,
      outcome: 'ok',
    });
    expect(sent[0]?.objectIds).toEqual(expect.arrayContaining([c, m]));
    expect(sent[0]?.ip).toMatch(/127\.0\.0\.1/);
    expect(sent[0]?.requestId).toMatch(/.+/);
    expect(sent[1]).toMatchObject({ userId: outsider.id, outcome: refused.errors?.[0]?.extensions?.code, objectIds: [c] });
    expect(ofField(rows, 'conversation')[0]).toMatchObject({
      operation: 'query',
      operationName: 'History',
      objectType: 'Conversation',
      objectIds: [c],
      userId: org.patient.id,
      outcome: 'ok',
    });
    expect(ofField(rows, 'me')).toEqual([]);
    expect(ofField(rows, 'models')).toEqual([]);
    // nothing of the content: no body, no token anywhere in any row
    const text = JSON.stringify(rows);
    expect(text).not.toContain(body);
    expect(text).not.toContain('private body');
    for (const u of [org.provider, org.patient, outsider]) expect(text).not.toContain(u.token.slice(7));
  });

  it('predictions: every score and every read of predictions or batch results is recorded, without features', async ({ app }) => {
    const org = await seedOrg(app);
    const subject = `subj-${randomUUID().slice(0, 8)}`;
    const p = await score(app, org.service, { model: 'risk-30d', features: riskFeatures({ age: 97 }), subjectId: subject });
    const h = await gql(app, org.provider.token, `query($s: ID!){ predictions(subjectId: $s){ edges { node { id score } } } }`, {
      s: subject,
    });
    expect(h.data.predictions.edges).toHaveLength(1);
    const b = await submit(app, org.service, { model: 'risk-30d', rows: riskRows(3), clientBatchId: `audit-${randomUUID()}` });
    await gql(
      app,
      org.admin.token,
      `query($id: ID!){ scoringBatch(id: $id){ ${BATCH} results(first: 5){ edges { node { rowIndex } } } } }`,
      {
        id: b.id,
      },
    );
    const bad = await gql(app, org.patient.token, `mutation($i: ScoreInput!){ score(input: $i){ id } }`, {
      i: { model: 'risk-30d', features: riskFeatures(), subjectId: subject },
    });
    expect(bad.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const rows = await auditRows(app, org.orgId);
    const scored = ofField(rows, 'score');
    expect(scored[0]).toMatchObject({ objectType: 'Prediction', outcome: 'ok', userId: org.service.id });
    expect(scored[0]?.objectIds).toEqual(expect.arrayContaining([subject, p.id]));
    expect(scored[1]).toMatchObject({ userId: org.patient.id, outcome: 'FORBIDDEN', objectIds: [subject] });
    const listed = ofField(rows, 'predictions')[0];
    expect(listed).toMatchObject({ operation: 'query', objectType: 'Prediction', userId: org.provider.id });
    expect(listed?.objectIds).toEqual(expect.arrayContaining([subject, p.id]));
    expect(ofField(rows, 'submitScoringBatch')[0]).toMatchObject({ objectType: 'ScoringBatch', objectIds: [b.id], outcome: 'ok' });
    expect(ofField(rows, 'scoringBatch')[0]).toMatchObject({ objectType: 'ScoringBatch', objectIds: [b.id], userId: org.admin.id });
    expect(JSON.stringify(rows)).not.toMatch(/"age"|egfr|lengthOfStay/);
  });
});

describe('every domain', () => {
  it('notifications, alerts and reminders: each read and write is a row with its ids, never the text', async ({ app }) => {
    const org = await seedOrg(app);
    const secret = `private text ${randomUUID()}`;
    const ok = <T>(r: { data?: T; errors?: unknown }) => {
      expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
      return r.data as T;
    };
    // notifications: a service sends, the patient reads the inbox and marks it read
    const sent = ok<any>(
      await gql(
        app,
        org.service.token,
        `mutation($u: ID!, $t: String!){ sendNotification(input: {userId: $u, kind: SYSTEM, title: $t}){ id } }`,
        {
          u: org.patient.id,
          t: secret,
        },
      ),
    ).sendNotification.id as string;
    ok(await gql(app, org.patient.token, `{ notifications(first: 5){ edges { node { id title } } } unreadNotificationCount }`));
    ok(await gql(app, org.patient.token, `mutation($id: ID!){ markNotificationRead(id: $id){ id } }`, { id: sent }));
    // alerts: a service raises, the provider lists and acknowledges
    const alert = ok<any>(await gql(app, org.service.token, RAISE, { i: { level: 'LOW', type: 'test', title: secret, body: secret } }))
      .raiseAlert.id as string;
    ok(await gql(app, org.provider.token, ALERTS, { n: 5 }));
    ok(await gql(app, org.provider.token, ACK, { id: alert }));
    // reminders: the provider creates one for the patient, the patient lists them, the provider cancels it
    const reminder = ok<any>(
      await gql(app, org.provider.token, CREATE_REMINDER, {
        input: {
          kind: 'MEDICATION',
          title: secret,
          body: secret,
          userId: org.patient.id,
          at: new Date(Date.now() + 3_600_000).toISOString(),
        },
      }),
    ).createReminder.id as string;
    ok(await gql(app, org.patient.token, REMINDERS, {}));
    ok(await gql(app, org.provider.token, CANCEL_REMINDER, { id: reminder }));

    const rows = await auditRows(app, org.orgId);
    const row = (field: string) => {
      const [r] = ofField(rows, field);
      expect(r, `a row for ${field}`).toBeDefined();
      return r!;
    };
    expect(row('sendNotification')).toMatchObject({
      operation: 'mutation',
      objectType: 'Notification',
      userId: org.service.id,
      outcome: 'ok',
    });
    expect(row('sendNotification').objectIds).toEqual(expect.arrayContaining([org.patient.id, sent]));
    expect(row('notifications')).toMatchObject({
      operation: 'query',
      objectType: 'Notification',
      userId: org.patient.id,
      objectIds: [sent],
    });
    expect(row('unreadNotificationCount')).toMatchObject({ operation: 'query', objectType: 'Notification', userId: org.patient.id });
    expect(row('markNotificationRead')).toMatchObject({ operation: 'mutation', objectType: 'Notification', objectIds: [sent] });
    expect(row('raiseAlert')).toMatchObject({ operation: 'mutation', objectType: 'Alert', userId: org.service.id, objectIds: [alert] });
    expect(row('alerts')).toMatchObject({ operation: 'query', objectType: 'Alert', userId: org.provider.id });
    expect(row('alerts').objectIds).toContain(alert);
    expect(row('acknowledgeAlert')).toMatchObject({ operation: 'mutation', objectType: 'Alert', objectIds: [alert], outcome: 'ok' });
    expect(row('createReminder')).toMatchObject({ operation: 'mutation', objectType: 'Reminder', userId: org.provider.id });
    expect(row('createReminder').objectIds).toEqual(expect.arrayContaining([org.patient.id, reminder]));
    expect(row('reminders')).toMatchObject({ operation: 'query', objectType: 'Reminder', userId: org.patient.id, objectIds: [reminder] });
    expect(row('cancelReminder')).toMatchObject({ operation: 'mutation', objectType: 'Reminder', objectIds: [reminder] });
    const text = JSON.stringify(rows);
    expect(text).not.toContain(secret);
    for (const u of [org.service, org.provider, org.patient]) expect(text).not.toContain(u.token.slice(7));
  });

  it('every Query, Mutation and Subscription root field is audited, except those listed as touching no patient data', () => {
    const schema = buildSchema();
    const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((t) =>
      t ? Object.values(t.getFields()) : [],
    );
    const names = new Set(roots.map((f) => f.name));
    // no stale entry: every field listed as not audited exists
    expect([...NOT_AUDITED].filter((n) => !names.has(n))).toEqual([]);
    for (const f of roots) {
      const policy = policyOf(f);
      if (NOT_AUDITED.has(f.name)) expect(policy, f.name).toBeUndefined();
      else {
        expect(policy, f.name).toBeDefined();
        // it names an object type of the schema (not a scalar such as Int, Boolean or DateTime)
        expect(isObjectType(schema.getType(policy!.objectType)), `${f.name}: ${policy!.objectType}`).toBe(true);
      }
    }
  });
});

describe('audit rows over graphql-ws', () => {
  it('messaging: a query, a write, and a subscription start and its stop (client complete, then socket close)', async ({ app }) => {
    const org = await seedOrg(app);
    const c = await conversation(app, org.provider, [org.patient]);
    const client = connect(app, org.patient);
    const q = await overSocket(client, `query($id: ID!){ conversation(id: $id){ id } }`, { id: c });
    expect(q.errors).toBeUndefined();
    const body = `ws body ${randomUUID()}`;
    const w = await overSocket(client, SEND, { c, b: body });
    expect(w.errors).toBeUndefined();
    const sub = await live(app, client, EVENTS, { c });
    sub.stop(); // graphql-ws `complete`
    await until(async () => ofField(await auditRows(app, org.orgId), 'conversationEvents').length === 2, 5_000, 'the unsubscribe row');
    await live(app, client, EVENTS, { c });
    await client.dispose(); // the socket closes with the subscription open
    await until(async () => ofField(await auditRows(app, org.orgId), 'conversationEvents').length === 4, 5_000, 'the close row');

    const rows = await auditRows(app, org.orgId);
    const [read] = ofField(rows, 'conversation');
    expect(read).toMatchObject({ transport: 'ws', operation: 'query', objectIds: [c], outcome: 'ok', userId: org.patient.id });
    expect(read?.socketId).toEqual(expect.any(String));
    expect(ofField(rows, 'conversation')[0]?.ip).toMatch(/127\.0\.0\.1/);
    expect(ofField(rows, 'sendMessage')[0]).toMatchObject({ transport: 'ws', operation: 'mutation', outcome: 'ok' });
    expect(ofField(rows, 'sendMessage')[0]?.socketId).toEqual(expect.any(String));
    const subs = ofField(rows, 'conversationEvents');
    expect(subs.map((r) => [r.operation, r.outcome, r.detail])).toEqual([
      ['subscribe', 'ok', null],
      ['unsubscribe', 'ok', { reason: 'complete' }],
      ['subscribe', 'ok', null],
      ['unsubscribe', 'ok', { reason: 'closed' }],
    ]);
    for (const r of subs) expect(r).toMatchObject({ objectType: 'Conversation', objectIds: [c], transport: 'ws', userId: org.patient.id });
    // a start and its stop name the same connection and request
    expect(subs[1]).toMatchObject({ socketId: subs[0]?.socketId, requestId: subs[0]?.requestId });
    expect(subs[3]).toMatchObject({ socketId: subs[2]?.socketId, requestId: subs[2]?.requestId });
    expect(JSON.stringify(rows)).not.toContain(body);
  });

  it('a subscription whose root field is written inside a fragment is recorded like any other', async ({ app }) => {
    const org = await seedOrg(app);
    const c = await conversation(app, org.provider, [org.patient]);
    const client = connect(app, org.patient);
    const inline = await live(
      app,
      client,
      `subscription Inline($c: ID!){ ... on Subscription { conversationEvents(conversationId: $c){ __typename } } }`,
      { c },
    );
    const named = await live(
      app,
      client,
      `subscription Named($c: ID!){ ...Events } fragment Events on Subscription { conversationEvents(conversationId: $c){ __typename } }`,
      { c },
    );
    await send(app, org.provider, c, 'hello');
    await Promise.all([inline.waitFor(1), named.waitFor(1)]); // both deliver
    inline.stop();
    named.stop();
    await until(async () => ofField(await auditRows(app, org.orgId), 'conversationEvents').length === 4, 5_000, 'the four rows');
    const rows = ofField(await auditRows(app, org.orgId), 'conversationEvents');
    expect(rows.map((r) => [r.operationName, r.operation, r.objectType, r.objectIds, r.userId]).sort()).toEqual(
      [
        ['Inline', 'subscribe', 'Conversation', [c], org.patient.id],
        ['Inline', 'unsubscribe', 'Conversation', [c], org.patient.id],
        ['Named', 'subscribe', 'Conversation', [c], org.patient.id],
        ['Named', 'unsubscribe', 'Conversation', [c], org.patient.id],
      ].sort(),
    );
  });

  it('a refused subscription is recorded with its error code', async ({ app }) => {
    const org = await seedOrg(app);
    const c = await conversation(app, org.provider, [org.provider]);
    const outsider = await org.user('patient');
    const client = connect(app, outsider);
    const errors = await overSocket(client, EVENTS, { c });
    expect(errors.errors?.[0]?.extensions?.code).toMatch(/FORBIDDEN|NOT_FOUND/);
    const rows = ofField(await auditRows(app, org.orgId), 'conversationEvents').filter((r) => r.userId === outsider.id);
    expect(rows).toEqual([
      expect.objectContaining({ operation: 'subscribe', outcome: errors.errors?.[0]?.extensions?.code, objectIds: [c] }),
    ]);
  });

  it('calls: start, accept, read and end, and the callEvents subscription', async ({ app }) => {
    const org = await seedOrg(app);
    const callee = connect(app, org.patient);
    await live(app, callee, CALL_EVENTS, { d: 'phone' });
    const conv = await conversation(app, org.provider, [org.patient], 'DIRECT');
    const caller = connect(app, org.provider);
    const started = await overSocket(caller, START, { i: { conversationId: conv, media: 'AUDIO', clientCallId: randomUUID() } });
    expect(started.errors).toBeUndefined();
    const id = started.data.startCall.id as string;
    expect((await gql(app, org.patient.token, ACCEPT, { id, d: 'phone' })).errors).toBeUndefined();
    expect((await gql(app, org.patient.token, CALL, { id })).errors).toBeUndefined();
    expect((await overSocket(caller, END, { id })).errors).toBeUndefined();
    await callee.dispose();
    await until(async () => ofField(await auditRows(app, org.orgId), 'callEvents').length === 2, 5_000, 'the callEvents rows');

    const rows = await auditRows(app, org.orgId);
    expect(ofField(rows, 'startCall')[0]).toMatchObject({ transport: 'ws', objectType: 'Call', userId: org.provider.id, outcome: 'ok' });
    expect(ofField(rows, 'startCall')[0]?.objectIds).toEqual(expect.arrayContaining([id, conv]));
    expect(ofField(rows, 'acceptCall')[0]).toMatchObject({ transport: 'http', objectType: 'Call', objectIds: [id], outcome: 'ok' });
    expect(ofField(rows, 'call')[0]).toMatchObject({ operation: 'query', objectType: 'Call', objectIds: [id] });
    expect(ofField(rows, 'endCall')[0]).toMatchObject({ transport: 'ws', objectIds: [id], outcome: 'ok' });
    expect(ofField(rows, 'callEvents').map((r) => [r.operation, r.objectType, r.userId, r.transport])).toEqual([
      ['subscribe', 'Call', org.patient.id, 'ws'],
      ['unsubscribe', 'Call', org.patient.id, 'ws'],
    ]);
  });

  it('predictions: predictionEvents (a stream), scoringBatchProgress (an iterator, completed by the server) and riskAlerts start and stop', async ({
    app,
  }) => {
    const org = await seedOrg(app);
    const subject = `subj-${randomUUID().slice(0, 8)}`;
    const client = connect(app, org.provider);
    const events = await live(app, client, `subscription($s: ID!){ predictionEvents(subjectId: $s){ cursor prediction { id score } } }`, {
      s: subject,
    });
    const p = await score(app, org.service, { model: 'risk-30d', features: riskFeatures(), subjectId: subject });
    await events.waitFor(1);
    const b = await submit(app, org.provider, { model: 'risk-30d', rows: riskRows(2), clientBatchId: `audit-${randomUUID()}` });
    const progress = collect(client, `subscription($id: ID!){ scoringBatchProgress(batchId: $id){ id status } }`, { id: b.id });
    await progress.waitFor(1);
    const workers = scoringWorker(app, () => [org.orgId]);
    try {
      await progress.ended(); // the server completes it at the terminal status
    } finally {
      await workers.close();
    }
    events.stop();
    // a risk rule and its crossings (each crossing carries a prediction)
    const rule = await gql(
      app,
      org.provider.token,
      `mutation { createRiskRule(input: { model: "risk-30d", enterAt: 40, exitAt: 30, subjectIds: ["${subject}"] }) { id } }`,
    );
    const ruleId = rule.data.createRiskRule.id as string;
    const alerts = await live(app, client, `subscription($r: ID!){ riskAlerts(ruleId: $r){ cursor subjectId prediction { id score } } }`, {
      r: ruleId,
    });
    const high = await score(app, org.service, {
      model: 'risk-30d',
      features: riskFeatures({ edVisits6m: 8, charlson: 8 }),
      subjectId: subject,
    });
    expect((await alerts.waitFor(1))[0].riskAlerts.prediction.id).toBe(high.id);
    alerts.stop();
    await until(
      async () => {
        const rows = await auditRows(app, org.orgId);
        return (
          ofField(rows, 'predictionEvents').length === 2 &&
          ofField(rows, 'scoringBatchProgress').length === 2 &&
          ofField(rows, 'riskAlerts').length === 2
        );
      },
      5_000,
      'the subscription rows',
    );
    const rows = await auditRows(app, org.orgId);
    expect(ofField(rows, 'predictionEvents').map((r) => [r.operation, r.objectType, r.objectIds, r.detail])).toEqual([
      ['subscribe', 'Prediction', [subject], null],
      ['unsubscribe', 'Prediction', [subject], { reason: 'complete' }],
    ]);
    expect(ofField(rows, 'scoringBatchProgress').map((r) => [r.operation, r.objectType, r.objectIds, r.detail])).toEqual([
      ['subscribe', 'ScoringBatch', [b.id], null],
      ['unsubscribe', 'ScoringBatch', [b.id], { reason: 'done' }],
    ]);
    expect(ofField(rows, 'createRiskRule').map((r) => [r.operation, r.objectType, r.objectIds, r.outcome])).toEqual([
      ['mutation', 'RiskRule', [subject, ruleId], 'ok'],
    ]);
    expect(ofField(rows, 'riskAlerts').map((r) => [r.operation, r.objectType, r.objectIds, r.detail])).toEqual([
      ['subscribe', 'RiskRule', [ruleId], null],
      ['unsubscribe', 'RiskRule', [ruleId], { reason: 'complete' }],
    ]);
    expect(JSON.stringify(rows)).not.toMatch(/edVisits6m|charlson|lengthOfStay/);
    expect(p.id).toBeTruthy();
  });
});

describe('sessions', () => {
  it('an admin revoking a user’s sessions is recorded; a token refresh is not, and the token is nowhere', async ({ app }) => {
    const org = await seedOrg(app);
    const client = connect(app, org.patient);
    const fresh = `Bearer ${await token({ id: org.patient.id, orgId: org.orgId, role: 'patient', name: org.patient.name }, 7200)}`;
    const refreshed = await overSocket(client, `mutation($t: String!){ refreshConnectionToken(token: $t) }`, { t: fresh });
    expect(refreshed.errors).toBeUndefined();
    const revoked = await gql(app, org.admin.token, `mutation($u: ID!){ revokeUserSessions(userId: $u) }`, { u: org.provider.id });
    expect(revoked.errors).toBeUndefined();
    const rows = await auditRows(app, org.orgId);
    expect(ofField(rows, 'revokeUserSessions')).toEqual([
      expect.objectContaining({
        operation: 'mutation',
        objectType: 'User',
        objectIds: [org.provider.id],
        userId: org.admin.id,
        outcome: 'ok',
      }),
    ]);
    expect(ofField(rows, 'refreshConnectionToken')).toEqual([]);
    expect(JSON.stringify(rows)).not.toContain(fresh.slice(7));
  });
});

describe('AUDIT=off', () => {
  it('records nothing', async () => {
    const { startApp } = await import('../harness/start-app.js');
    const off = await startApp({ env: { AUDIT: 'off' } });
    const org = await seedOrg(off);
    const c = await conversation(off, org.provider, [org.patient]);
    await send(off, org.provider, c, 'hello');
    const client = connect(off, org.patient);
    await live(off, client, EVENTS, { c });
    await overSocket(client, `query($id: ID!){ conversation(id: $id){ id } }`, { id: c });
    await settled(off);
    expect(await auditRows(off, org.orgId)).toEqual([]);
  });
});
