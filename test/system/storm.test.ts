// A reconnect storm: many sockets connect and resume at the same moment on both instances, so their
// checks and reads are grouped (membership, first-sight users, stream baselines, replay ranges and
// renders). Every resumed subscriber still gets exactly what it missed, and a removed member or a
// stranger arriving in the same burst is still refused.
import { afterEach, describe, expect } from 'vitest';
import { disposeAll, gql, until } from '../harness/clients.js';
import { seedOrg } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import type { Viewer } from '../../src/shared/viewer.js';
import { REMOVE, conversation, expectContiguous, type Ev, type Frame, rawRecorder, send, it as base } from '../harness/system.js';

const it = base.extend('other', { scope: 'file' }, ({ b }) => seedOrg(b));
afterEach(disposeAll);

const eventsOf = (frames: Frame[], id: string): Ev[] =>
  frames.filter((f) => f.id === id && f.type === 'next').map((f) => f.payload.data.conversationEvents as Ev);
const added = (evs: Ev[]) => evs.filter((e) => e.__typename === 'MessageAdded').map((e) => e.message!.id);

describe('reconnect storm', () => {
  it('resumes 40 sockets at once with exact replays, and refuses a removed member and strangers in the same burst', async ({
    a,
    b,
    org,
    other,
  }) => {
    const patients = [org.patient, await org.user('patient'), await org.user('patient'), await org.user('patient')];
    const removed = patients[3]!;
    const stranger = await org.user('patient'); // same organisation, member of nothing
    const convs: string[] = [];
    for (let i = 0; i < 8; i++) convs.push(await conversation(a, org.provider, patients));
    // everyone's cursor is the conversation's first event (MembersChanged, position 1)
    const cursorOf = (app: TestApp, c: string) => app.container.cursors.encode(`conv:${c}`, 1);
    const removal = await gql(b, org.provider.token, REMOVE, { c: convs[0], u: removed.id });
    expect(removal.errors).toBeUndefined();
    const missed = new Map<string, string[]>();
    await Promise.all(
      convs.map(async (c, i) => {
        const ids: string[] = [];
        for (let k = 0; k < 3; k++) ids.push(await send((i + k) % 2 ? a : b, org.provider, c, `missed-${k}`));
        missed.set(c, ids);
      }),
    );

    // the burst: every member of every conversation, the removed member and two strangers, at once
    const members = [org.provider, ...patients];
    const plan = [
      ...convs.flatMap((c, i) =>
        members.filter((u) => !(i === 0 && u === removed)).map((u, k) => ({ c, user: u, app: (i + k) % 2 ? a : b, refused: false })),
      ),
      { c: convs[0]!, user: removed, app: a, refused: true },
      { c: convs[1]!, user: stranger, app: b, refused: true },
      { c: convs[2]!, user: other.patient, app: a, refused: true },
    ];
    expect(plan.filter((p) => !p.refused)).toHaveLength(39);
    const sockets = await Promise.all(
      plan.map(async (p) => {
        const raw = await rawRecorder(p.app, p.user.token);
        raw.subscribe('s', { c: p.c, a: cursorOf(p.app, p.c) });
        return { ...p, raw };
      }),
    );

    for (const s of sockets.filter((x) => x.refused)) {
      const err = await s.raw.next((f) => f.id === 's' && f.type !== 'next');
      expect(err.type).toBe('error');
      expect(err.payload[0].extensions.code).toBe('NOT_FOUND');
    }
    const resumed = sockets.filter((s) => !s.refused);
    await until(() => resumed.every((s) => added(eventsOf(s.raw.frames, 's')).length >= 3), 20_000, 'every replay');
    for (const s of resumed) {
      const evs = eventsOf(s.raw.frames, 's');
      expect(added(evs), `${s.user.name} in ${s.c}`).toEqual(missed.get(s.c));
      expectContiguous(s.app, s.c, evs); // conversation 0 also replays the removal, in its place
      expect(evs[0]!.cursor).toBe(s.app.container.cursors.encode(`conv:${s.c}`, 2));
    }

    // then live, exactly once each
    const live = new Map<string, string>();
    for (const [i, c] of convs.entries()) live.set(c, await send(i % 2 ? a : b, org.provider, c, 'live'));
    await until(() => resumed.every((s) => added(eventsOf(s.raw.frames, 's')).length >= 4), 10_000, 'every live event');
    for (const s of resumed) expect(added(eventsOf(s.raw.frames, 's'))).toEqual([...missed.get(s.c)!, live.get(s.c)]);
    for (const s of sockets.filter((x) => x.refused)) expect(s.raw.frames.filter((f) => f.type === 'next')).toEqual([]);
    for (const s of sockets) s.raw.ws.close(1000);
  });

  it('answers grouped membership checks and first-sight users one by one: a non-member or a foreign account inside a group is refused', async ({
    a,
    org,
    other,
  }) => {
    const { messaging, identity } = a.container.services;
    const patients = [org.patient, await org.user('patient'), await org.user('patient')];
    const removed = patients[2]!;
    const c = await conversation(a, org.provider, patients);
    expect((await gql(a, org.provider.token, REMOVE, { c, u: removed.id })).errors).toBeUndefined();
    const viewer = (u: { id: string; role: string; name: string }, orgId = org.orgId) =>
      ({ userId: u.id, orgId, role: u.role, name: u.name }) as Viewer;
    // 30 at once: the first calls run alone, the rest wait and go in groups, refused ones last
    const asks = [...Array.from({ length: 27 }, (_, i) => viewer(patients[i % 2]!)), viewer(removed), viewer(other.patient, other.orgId)];
    const opened = await Promise.allSettled(asks.map((v) => messaging.openEvents(v, c, null)));
    expect(opened.slice(0, 27).every((r) => r.status === 'fulfilled')).toBe(true);
    for (const r of opened.slice(27)) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason.extensions.code).toBe('NOT_FOUND');
    }
    // a `sub` already registered in another organisation is refused, also when looked up in a group
    const fresh = Array.from({ length: 20 }, (_, i) => viewer({ id: `${org.orgId}:storm-${i}`, role: 'patient', name: `p${i}` }));
    const foreign = viewer({ id: other.patient.id, role: 'patient', name: other.patient.name });
    const ensured = await Promise.allSettled([...fresh, foreign].map((v) => identity.ensureViewer(v)));
    expect(ensured.slice(0, 20).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(ensured[20]!.status).toBe('rejected');
    expect((ensured[20] as PromiseRejectedResult).reason.extensions.code).toBe('FORBIDDEN');
    expect(
      await identity.usersById(
        viewer(org.patient),
        fresh.map((v) => v.userId),
      ),
    ).toHaveLength(20);
  });
});
