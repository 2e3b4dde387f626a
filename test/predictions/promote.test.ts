// promoteModel: an audited admin mutation of the deployment-wide registry, for admins of the
// operator organisations in MODEL_ADMIN_ORGS only; the alias change shows in `models` and in scoring
// on every instance within the alias cache's TTL.
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { defaultModelsDir } from '../../src/modules/predictions/module.js';
import { auditRows } from '../audit/ops.js';
import { gql, until } from '../harness/clients.js';
import { withTwoInstances } from '../harness/fixtures.js';
import { type SeededUser, token } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import { riskFeatures, score } from './ops.js';

// the registry is shared by every test file: this file's model has a name of its own
const MODEL = `risk-promo-${randomUUID().slice(0, 8)}`;
const dir = mkdtempSync(join(tmpdir(), 'wardline-promote-'));
cpSync(join(defaultModelsDir(), 'risk-30d'), join(dir, MODEL), { recursive: true });
for (const v of ['1.0.0', '1.1.0']) {
  const card = join(dir, MODEL, v, 'card.json');
  writeFileSync(card, JSON.stringify({ ...JSON.parse(readFileSync(card, 'utf8')), name: MODEL }));
}
const OPERATOR = `op-${randomUUID()}`;

// rate limits off: the routing check below polls `score` until B follows the new alias
const it = withTwoInstances({ PREDICTIONS_MODELS_DIR: dir, MODEL_ADMIN_ORGS: OPERATOR, AUDIT_FLUSH_MS: '50', RATE_LIMITS: 'off' });

const PROMOTE = `mutation($n: String!, $v: String!, $a: String){ promoteModel(name: $n, version: $v, alias: $a){ id version aliases } }`;

async function operatorUser(app: TestApp, role: 'admin' | 'provider'): Promise<SeededUser> {
  const identity = app.container.services.identity;
  await identity.createOrg(OPERATOR, 'Operator').catch(() => {});
  const id = `${OPERATOR}:${role}`;
  await identity.upsertUser({ id, orgId: OPERATOR, role, name: role });
  return { id, name: role, role, token: `Bearer ${await token({ id, orgId: OPERATOR, role, name: role })}` };
}

const aliasesOn = async (app: TestApp, u: SeededUser) =>
  Object.fromEntries(
    ((await gql(app, u.token, `{ models { id aliases } }`)).data.models as Array<{ id: string; aliases: string[] }>)
      .filter((m) => m.id.startsWith(`${MODEL}@`))
      .map((m) => [m.id, [...m.aliases].sort()]),
  );

describe('promoteModel', () => {
  it('only admins of MODEL_ADMIN_ORGS; unknown versions and bad aliases are refused and change nothing', async ({ a, org }) => {
    const provider = await operatorUser(a, 'provider');
    const admin = await operatorUser(a, 'admin');
    const before = await aliasesOn(a, admin);
    expect(before).toEqual({ [`${MODEL}@1.0.0`]: ['champion'], [`${MODEL}@1.1.0`]: ['challenger'] });
    const code = async (u: SeededUser, v: Record<string, unknown>) => (await gql(a, u.token, PROMOTE, v)).errors?.[0]?.extensions?.code;
    expect(await code(org.admin, { n: MODEL, v: '1.1.0' })).toBe('FORBIDDEN'); // an admin of another org
    expect(await code(provider, { n: MODEL, v: '1.1.0' })).toBe('FORBIDDEN');
    expect(await code(admin, { n: MODEL, v: '9.9.9' })).toBe('NOT_FOUND');
    expect(await code(admin, { n: 'no-such-model', v: '1.0.0' })).toBe('NOT_FOUND');
    expect(await code(admin, { n: MODEL, v: '1.1.0', a: 'Champion!' })).toBe('BAD_USER_INPUT');
    expect(await aliasesOn(a, admin)).toEqual(before);
    const rows = (await auditRows(a, OPERATOR)).filter((r) => r.field === 'promoteModel');
    expect(rows.map((r) => r.outcome)).toEqual(['FORBIDDEN', 'NOT_FOUND', 'NOT_FOUND', 'BAD_USER_INPUT']);
    expect((await auditRows(a, org.orgId)).filter((r) => r.field === 'promoteModel').map((r) => [r.userId, r.outcome])).toEqual([
      [org.admin.id, 'FORBIDDEN'],
    ]);
  });

  it('moves champion: audited with the old and new version, seen in `models` and in scoring on both instances', async ({ a, b }) => {
    const admin = await operatorUser(a, 'admin');
    // B has read (and cached) the champion before the promotion
    expect((await score(b, admin, { model: MODEL, features: riskFeatures() })).modelVersion).toBe('1.0.0');
    const r = await gql(a, admin.token, PROMOTE, { n: MODEL, v: '1.1.0' });
    expect(r.errors).toBeUndefined();
    expect(r.data.promoteModel).toEqual({ id: `${MODEL}@1.1.0`, version: '1.1.0', aliases: ['challenger', 'champion'] });
    expect((await score(a, admin, { model: MODEL, features: riskFeatures() })).modelVersion).toBe('1.1.0'); // at once here
    expect(await aliasesOn(b, admin)).toEqual({ [`${MODEL}@1.0.0`]: [], [`${MODEL}@1.1.0`]: ['challenger', 'champion'] });
    const t0 = Date.now();
    await until(
      async () => (await score(b, admin, { model: MODEL, features: riskFeatures() })).modelVersion === '1.1.0',
      8_000,
      'B to route by the new champion',
    );
    expect(Date.now() - t0).toBeLessThan(6_000); // the alias cache's TTL is 5 s

    const [row] = (await auditRows(a, OPERATOR)).filter((x) => x.field === 'promoteModel' && x.outcome === 'ok');
    expect(row).toMatchObject({
      operation: 'mutation',
      objectType: 'Model',
      objectIds: [`${MODEL}@1.1.0`],
      userId: admin.id,
      role: 'admin',
      detail: { model: MODEL, alias: 'champion', from: '1.0.0', to: '1.1.0' },
    });

    // and back, naming the alias explicitly
    const back = await gql(a, admin.token, PROMOTE, { n: MODEL, v: '1.0.0', a: 'champion' });
    expect(back.data.promoteModel.aliases).toEqual(['champion']);
    const rows = (await auditRows(a, OPERATOR)).filter((x) => x.field === 'promoteModel' && x.outcome === 'ok');
    expect(rows.map((x) => x.detail)).toEqual([
      { model: MODEL, alias: 'champion', from: '1.0.0', to: '1.1.0' },
      { model: MODEL, alias: 'champion', from: '1.1.0', to: '1.0.0' },
    ]);
  });
});
