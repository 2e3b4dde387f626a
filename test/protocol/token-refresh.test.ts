import type { Client } from 'graphql-ws';
import { describe, expect } from 'vitest';
import { connect, gql, live, settled, until } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import { token } from '../harness/seed.js';
import { EVENTS, conversation, events, send } from '../messaging/ops.js';

const it = withApp();

const REFRESH = 'mutation($t:String!){ refreshConnectionToken(token:$t) }';
/** The `exp` claim of a token (epoch seconds). */
const expOf = (t: string) => JSON.parse(Buffer.from(t.split('.')[1] ?? '', 'base64url').toString()).exp as number;

/** Runs one operation over a stock graphql-ws client; resolves with its result (or the `error` frame's errors). */
const run = (client: Client, query: string, variables?: Record<string, unknown>) =>
  new Promise<{ data?: any; errors?: Array<{ message: string; extensions?: { code?: string } }> }>((resolve) => {
    let result: any;
    client.subscribe(
      { query, variables },
      {
        next: (r) => (result = r),
        error: (e) => resolve({ errors: Array.isArray(e) ? e : [e as never] }),
        complete: () => resolve(result),
      },
    );
  });

/** A stock client whose close (code, reason, when) is recorded. */
function tracked(app: Parameters<typeof connect>[0], authorization: string) {
  const closes: Array<{ code: number; reason: string; at: number }> = [];
  const client = connect(app, authorization, {
    lazy: false, // stays connected between operations
    onNonLazyError: () => {},
    on: {
      closed: (e) => {
        const { code, reason } = e as { code: number; reason: string };
        closes.push({ code, reason, at: Date.now() });
      },
    },
  });
  return { client, closes };
}

it.afterEach(async ({ app }) => {
  await settled(app);
});

describe('refreshConnectionToken', () => {
  it('keeps a subscription alive past the first token expiry and closes 4403 at the last token expiry', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const first = await token({ id: org.patient.id, orgId: org.orgId, role: 'patient', name: org.patient.name }, 3);
    const { client, closes } = tracked(app, `Bearer ${first}`);
    const sub = await live(app, client, EVENTS, { c });

    const second = await token({ id: org.patient.id, orgId: org.orgId, role: 'patient', name: org.patient.name }, 5);
    const r = await run(client, REFRESH, { t: second });
    expect(r.errors).toBeUndefined();
    expect(r.data.refreshConnectionToken).toBe(new Date(expOf(second) * 1000).toISOString());
    expect(expOf(second)).toBeGreaterThan(expOf(first));

    // past the first token's expiry the socket and its subscription are still there
    await until(() => Date.now() > expOf(first) * 1000 + 300, 5_000, "the first token's expiry");
    expect(closes).toEqual([]);
    await send(app, org.provider, c, 'after the first expiry');
    await sub.waitFor(1);
    expect(events(sub).map((e) => e.message?.body)).toEqual(['after the first expiry']);
    expect((await run(client, '{ me { id } }')).data.me.id).toBe(org.patient.id);

    // and it closes at the second token's expiry
    await until(() => closes.length > 0, 8_000, 'the socket to close');
    expect(closes[0]).toMatchObject({ code: 4403, reason: 'Forbidden: token expired' });
    expect(closes[0]?.at).toBeGreaterThanOrEqual(expOf(second) * 1000 - 50);
    await sub.ended();
  });

  it("refuses another user's, another org's, another role's or an invalid token with FORBIDDEN and changes nothing", async ({
    app,
    org,
  }) => {
    const me = { id: org.patient.id, orgId: org.orgId, role: 'patient' as const, name: org.patient.name };
    const first = await token(me, 3);
    const { client, closes } = tracked(app, `Bearer ${first}`);
    expect((await run(client, '{ me { id } }')).data.me.id).toBe(org.patient.id);

    const other = await org.user('patient');
    const foreign = [
      other.token, // another user of the org
      `Bearer ${await token({ ...me, orgId: `${org.orgId}-other` }, 60)}`, // the same sub in another org
      `Bearer ${await token({ ...me, role: 'admin' }, 60)}`, // another role
      'Bearer not-a-token',
      `Bearer ${await token(me, -10)}`, // already expired
    ];
    for (const t of foreign) {
      const r = await run(client, REFRESH, { t });
      expect(r.errors?.[0]?.extensions?.code, t.slice(0, 30)).toBe('FORBIDDEN');
      expect(r.data ?? null).toBeNull();
    }
    // still the first token's socket: same user, and it closes at the first token's expiry
    expect((await run(client, '{ me { id } }')).data.me.id).toBe(org.patient.id);
    await until(() => closes.length > 0, 5_000, 'the socket to close');
    expect(closes[0]).toMatchObject({ code: 4403 });
    expect(closes[0]?.at).toBeLessThan(expOf(first) * 1000 + 1_000);
  });

  it('is refused over HTTP with BAD_USER_INPUT (there is no connection to refresh)', async ({ app, org }) => {
    const r = await gql(app, org.patient.token, REFRESH, { t: org.patient.token });
    expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(r.errors?.[0]?.message).toMatch(/WebSocket/);
  });
});
