// Two instances of one deployment behave as one: every subscriber, wherever it is connected, sees
// every message of the conversation once, in commit order, with cursors that resume anywhere.
import { afterEach, describe, expect } from 'vitest';
import type { TestApp } from '../harness/start-app.js';
import {
  conversation,
  events,
  expectContiguous,
  history,
  messageIds,
  send,
  waitForMessages,
  EVENTS,
  it as base,
} from '../harness/system.js';
import { connect, disposeAll, live } from '../harness/clients.js';
import type { SeededUser } from '../harness/seed.js';

const it = base.extend('nurse', { scope: 'file' }, ({ org }) => org.user('provider', 'nurse'));
afterEach(disposeAll);

describe('two-instance fan-out', () => {
  it('delivers every message sent alternately through A and B to subscribers on both, in the same order', async ({ a, b, org, nurse }) => {
    const c = await conversation(a, org.provider, [org.patient, org.admin, nurse]);
    const subs = [
      await live(a, connect(a, org.patient), EVENTS, { c }),
      await live(b, connect(b, org.provider), EVENTS, { c }),
      await live(a, connect(a, org.admin), EVENTS, { c }),
      await live(b, connect(b, org.patient), EVENTS, { c }), // the same user on a second device, other instance
    ];
    const N = 30;
    const sent: string[] = [];
    for (let i = 0; i < N; i++) {
      const [app, by] = i % 2 === 0 ? [a, org.provider] : [b, org.patient];
      sent.push(await send(app, by, c, `m${i}`));
    }
    for (const sub of subs) await waitForMessages(sub, N);
    for (const sub of subs) {
      expect(messageIds(sub)).toEqual(sent);
      expect(events(sub).map((e) => e.__typename)).toEqual(Array(N).fill('MessageAdded'));
      expectContiguous(a, c, events(sub));
    }
    // a cursor names one event of one stream: distinct per event, identical on both instances
    const cursors = events(subs[0]!).map((e) => e.cursor);
    expect(new Set(cursors).size).toBe(N);
    for (const sub of subs) expect(events(sub).map((e) => e.cursor)).toEqual(cursors);
    expect(await history(b, org.patient, c)).toEqual(sent);

    // a cursor received from A resumes on B (and vice versa) with exactly what follows it
    for (const [k, app, user] of [
      [9, b, org.patient],
      [20, a, org.provider],
    ] as const) {
      const resumed = await live(app, connect(app, user), EVENTS, { c, a: cursors[k] });
      await waitForMessages(resumed, N - k - 1);
      expect(messageIds(resumed)).toEqual(sent.slice(k + 1));
    }
    // nothing arrived twice in the meantime
    for (const sub of subs) expect(messageIds(sub)).toHaveLength(N);
  });

  it('keeps one order under concurrent senders on both instances, equal to the history order', async ({ a, b, org, nurse }) => {
    const c = await conversation(a, org.provider, [org.patient, org.admin, nurse]);
    const subs = [
      await live(a, connect(a, org.patient), EVENTS, { c }),
      await live(a, connect(a, org.provider), EVENTS, { c }),
      await live(b, connect(b, org.admin), EVENTS, { c }),
      await live(b, connect(b, nurse), EVENTS, { c }),
    ];
    const senders: Array<[TestApp, SeededUser]> = [
      [a, org.provider],
      [b, org.patient],
      [a, org.admin],
      [b, nurse],
      [a, nurse],
      [b, org.provider],
    ];
    const PER = 12;
    const bySender = await Promise.all(
      senders.map(async ([app, by], s) => {
        const ids: string[] = [];
        for (let i = 0; i < PER; i++) ids.push(await send(app, by, c, `s${s}-${i}`));
        return ids;
      }),
    );
    const N = senders.length * PER;
    for (const sub of subs) await waitForMessages(sub, N);
    const order = await history(a, org.provider, c);
    expect(order).toHaveLength(N);
    expect(new Set(order).size).toBe(N);
    for (const sub of subs) {
      expect(messageIds(sub)).toEqual(order);
      expectContiguous(b, c, events(sub));
    }
    // each sender's own messages keep the order in which that sender's calls returned
    for (const ids of bySender) expect(order.filter((id) => ids.includes(id))).toEqual(ids);
  });
});
