// A client that lost its connection resubscribes with the last cursor it saw and gets exactly what
// it missed, in order, then live events — on either instance, even while messages keep coming.
import { afterEach, describe, expect } from 'vitest';
import { conversation, events, expectContiguous, history, messageIds, send, waitForMessages, EVENTS, it } from '../harness/system.js';
import { connect, disposeAll, live, sleep } from '../harness/clients.js';

afterEach(disposeAll);

describe('resume after disconnect', () => {
  it('replays exactly the 50 missed messages in order, then continues live without duplicates', async ({ a, b, org }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const first = connect(a, org.patient);
    const before = await live(a, first, EVENTS, { c });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) seen.push(await send(b, org.provider, c, `before-${i}`));
    await waitForMessages(before, 5);
    expect(messageIds(before)).toEqual(seen);
    const last = events(before).at(-1)!.cursor!;
    await first.dispose();

    const missed: string[] = [];
    for (let i = 0; i < 50; i++) missed.push(await send(i % 2 ? a : b, org.provider, c, `missed-${i}`));
    expect(messageIds(before)).toHaveLength(5); // the disposed client got nothing more

    const again = await live(b, connect(b, org.patient), EVENTS, { c, a: last });
    await waitForMessages(again, 50);
    await sleep(200); // nothing beyond the 50 may follow the replay
    expect(messageIds(again)).toEqual(missed);

    const after: string[] = [];
    for (let i = 0; i < 3; i++) after.push(await send(a, org.provider, c, `live-${i}`));
    await waitForMessages(again, 53);
    await sleep(200);
    expect(messageIds(again)).toEqual([...missed, ...after]);
    expectContiguous(a, c, [...events(before), ...events(again)]);
    expect(await history(a, org.patient, c)).toEqual([...seen, ...missed, ...after]);
  });

  it('loses and repeats nothing when messages keep arriving while the replay runs', async ({ a, b, org }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const first = connect(a, org.patient);
    const before = await live(a, first, EVENTS, { c });
    const seen = [await send(a, org.provider, c, 'seen')];
    await waitForMessages(before, 1);
    const last = events(before)[0]!.cursor!;
    await first.dispose();

    const missed: string[] = [];
    for (let i = 0; i < 40; i++) missed.push(await send(b, org.provider, c, `missed-${i}`));
    // resubscribe on A while a sender on B keeps going: live events race with the replay
    const racing: Promise<string>[] = [];
    const sender = (async () => {
      for (let i = 0; i < 30; i++) racing.push(Promise.resolve(await send(b, org.provider, c, `racing-${i}`)));
    })();
    const again = connect(a, org.patient);
    const resumed = await live(a, again, EVENTS, { c, a: last });
    await sender;
    const concurrent = await Promise.all(racing);
    await waitForMessages(resumed, 70);
    await sleep(200);
    expect(messageIds(resumed)).toEqual([...missed, ...concurrent]);
    expectContiguous(a, c, [...events(before), ...events(resumed)]);
    expect(await history(b, org.provider, c)).toEqual([...seen, ...missed, ...concurrent]);
  });

  it('resumes from a cursor with nothing missed as a plain live subscription', async ({ a, b, org }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const first = connect(b, org.patient);
    const sub = await live(b, first, EVENTS, { c });
    await send(a, org.provider, c, 'one');
    await waitForMessages(sub, 1);
    const last = events(sub)[0]!.cursor!;
    await first.dispose();
    const again = await live(a, connect(a, org.patient), EVENTS, { c, a: last });
    await sleep(200);
    expect(again.items).toEqual([]);
    const next = await send(b, org.provider, c, 'two');
    await waitForMessages(again, 1);
    await sleep(100);
    expect(messageIds(again)).toEqual([next]);
  });
});
