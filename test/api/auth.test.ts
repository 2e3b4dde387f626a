import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect } from 'vitest';
import { gql } from '../harness/clients.js';
import { TEST_JWT_SECRET } from '../harness/env.js';
import { withApp } from '../harness/fixtures.js';
import { seedOrg, token } from '../harness/seed.js';
import { conversation, send } from '../messaging/ops.js';

let c: string;
let m: string;

const GET = `query($c:ID!){ conversation(id:$c){ id messages { edges { node { body } } } } }`;
const SEND = `mutation($c:ID!){ sendMessage(input:{conversationId:$c, body:"intrusion"}){ id } }`;
const EDIT = `mutation($m:ID!){ editMessage(id:$m, body:"intrusion"){ id } }`;
const READ = `mutation($c:ID!, $m:ID!){ markConversationRead(conversationId:$c, messageId:$m){ id } }`;

const it = withApp()
  /** A second org on the same instance. */
  .extend('foreignOrg', { scope: 'file' }, ({ app }) => seedOrg(app))
  /** `attempts(user, conv, msg)`: read, send to, edit in and mark read a conversation as `user`. */
  .extend('attempts', ({ app }) => async (user: { token: string }, conv: string, msg: string) => ({
    get: await gql(app, user.token, GET, { c: conv }),
    send: await gql(app, user.token, SEND, { c: conv }),
    edit: await gql(app, user.token, EDIT, { m: msg }),
    read: await gql(app, user.token, READ, { c: conv, m: msg }),
  }));
it.beforeAll(async ({ app, org }) => {
  c = await conversation(app, org.provider, [org.patient]);
  m = await send(app, org.provider, c, 'private note');
});

const ME = `{ me { id name role } }`;
const codeOf = (r: { errors?: Array<{ extensions?: { code?: string } }> }) => r.errors?.[0]?.extensions?.code;

describe('authentication over HTTP', () => {
  it('answers `me` for a valid token', async ({ app, org }) => {
    const r = await gql(app, org.patient.token, ME);
    expect(r.data.me).toEqual({ id: org.patient.id, name: org.patient.name, role: 'PATIENT' });
  });

  it('refuses a missing, malformed, wrongly signed or expired token with UNAUTHENTICATED', async ({ app, org }) => {
    const claims = { sub: org.patient.id, org: org.orgId, role: 'patient' as const };
    const expired = await new SignJWT({ org: org.orgId, role: 'patient' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(org.patient.id)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const wrongKey = await new SignJWT({ org: org.orgId, role: 'patient' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(org.patient.id)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-another-secret-0123456789'));
    const noExp = await new SignJWT({ org: org.orgId, role: 'patient' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(org.patient.id)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const badRole = await new SignJWT({ org: org.orgId, role: 'superuser' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(org.patient.id)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const valid = await token({ id: claims.sub, orgId: claims.org, role: claims.role });
    const tampered = `${valid.slice(0, -4)}${valid.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    for (const auth of [
      undefined,
      'Bearer',
      'Bearer not-a-jwt',
      `Bearer ${expired}`,
      `Bearer ${wrongKey}`,
      `Bearer ${noExp}`,
      `Bearer ${badRole}`,
      `Bearer ${tampered}`,
    ]) {
      const r = await gql(app, auth, ME);
      expect(codeOf(r), String(auth).slice(0, 30)).toBe('UNAUTHENTICATED');
      expect(r.data ?? null).toBeNull();
    }
  });

  it('refuses mutations without a token', async ({ app }) => {
    const r = await gql(app, undefined, `mutation($c:ID!){ sendMessage(input:{conversationId:$c, body:"x"}){ id } }`, { c });
    expect(codeOf(r)).toBe('UNAUTHENTICATED');
  });
});

describe('tenant and membership isolation over HTTP', () => {
  it("treats another organisation's conversation exactly like a missing one", async ({ foreignOrg, attempts }) => {
    const missing = await attempts(foreignOrg.admin, randomUUID(), randomUUID());
    const foreign = await attempts(foreignOrg.admin, c, m);
    expect(foreign.get.data.conversation).toBeNull();
    expect(foreign.get.errors).toBeUndefined();
    for (const k of ['send', 'edit', 'read'] as const) {
      expect(codeOf(foreign[k]), k).toBe('NOT_FOUND');
      expect(foreign[k].errors?.[0]?.message, k).toBe(missing[k].errors?.[0]?.message);
    }
    expect(JSON.stringify(foreign)).not.toContain('private note');
  });

  it('treats a non-member of the same organisation exactly like a missing conversation', async ({ app, org, attempts }) => {
    const outsider = await org.user('provider');
    const missing = await attempts(outsider, randomUUID(), randomUUID());
    const denied = await attempts(outsider, c, m);
    expect(denied.get.data.conversation).toBeNull();
    for (const k of ['send', 'edit', 'read'] as const) {
      expect(codeOf(denied[k]), k).toBe('NOT_FOUND');
      expect(denied[k].errors?.[0]?.message, k).toBe(missing[k].errors?.[0]?.message);
    }
    // an admin is no exception: membership decides
    expect((await gql(app, org.admin.token, GET, { c })).data.conversation).toBeNull();
  });

  it('answers a malformed id like a missing one', async ({ app, org }) => {
    const r = await gql(app, org.patient.token, SEND, { c: 'not-a-uuid' });
    const missing = await gql(app, org.patient.token, SEND, { c: randomUUID() });
    expect(codeOf(r)).toBe('NOT_FOUND');
    expect(r.errors?.[0]?.message).toBe(missing.errors?.[0]?.message);
  });

  it('refuses a token whose subject is registered in another organisation', async ({ app, org, foreignOrg }) => {
    const hijack = `Bearer ${await token({ id: org.patient.id, orgId: foreignOrg.orgId, role: 'admin' })}`;
    const r = await gql(app, hijack, GET, { c });
    expect(r.data?.conversation ?? null).toBeNull();
    expect(JSON.stringify(r)).not.toContain('private note');
    expect(['FORBIDDEN', 'UNAUTHENTICATED']).toContain(codeOf(r));
  });
});
