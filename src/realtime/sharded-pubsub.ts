import { EventEmitter } from 'node:events';
import { PubSubEngine } from 'graphql-subscriptions';
import type { Cluster } from 'ioredis';

/**
 * graphql-redis-subscriptions' RedisPubSub, for sharded pub/sub on a Redis Cluster: SPUBLISH and
 * SSUBSCRIBE instead of PUBLISH and SUBSCRIBE, the same interface the hub and the revocations use
 * (subscribe → id, unsubscribe(id), publish(channel, payload) as JSON, `getSubscriber()` emitting
 * `ready` after a resubscription). RedisPubSub cannot do this: it only calls `subscribe`/`publish`
 * and listens to `message`.
 *
 * A sharded channel lives on the master that owns its slot, and a message is not broadcast over
 * the cluster bus, so pub/sub grows with the masters. The `subscriber` is a Cluster created with
 * `shardedSubscribers: true`: ioredis keeps one subscriber connection per master, routes each
 * SSUBSCRIBE to the owner of the channel's slot and, when the slot map changes (a failover, a
 * resharding), reconnects and subscribes again; it then emits `subscribersReady`, passed on here
 * as `ready` so the hub reads the ledger for what was published meanwhile.
 *
 * One SSUBSCRIBE per channel, however many local handlers it has (ioredis would count a second
 * SSUBSCRIBE of a channel twice in its resubscription list).
 */
export class ShardedPubSub extends PubSubEngine {
  private readonly publisher: Cluster;
  private readonly subscriber: Cluster;
  private readonly handlers = new Map<number, { channel: string; onMessage: (msg: unknown) => void }>();
  /** Local subscription ids per channel, and the channel's SSUBSCRIBE (later subscribers wait on it too). */
  private readonly byChannel = new Map<string, { ids: Set<number>; ready: Promise<unknown> }>();
  private readonly events = new EventEmitter();
  private nextId = 0;

  constructor(opts: { publisher: Cluster; subscriber: Cluster }) {
    super();
    this.publisher = opts.publisher;
    this.subscriber = opts.subscriber;
    this.subscriber.on('smessage', (channel: string, message: string) => this.deliver(channel, message));
    this.subscriber.on('subscribersReady', () => this.events.emit('ready'));
    this.events.on('error', () => {});
  }

  async publish<T>(channel: string, payload: T): Promise<void> {
    await this.publisher.spublish(channel, typeof payload === 'string' ? payload : JSON.stringify(payload));
  }

  async subscribe<T = unknown>(channel: string, onMessage: (msg: T) => void): Promise<number> {
    const id = ++this.nextId;
    this.handlers.set(id, { channel, onMessage: onMessage as (msg: unknown) => void });
    let entry = this.byChannel.get(channel);
    if (!entry) {
      entry = { ids: new Set(), ready: this.subscriber.ssubscribe(channel) };
      this.byChannel.set(channel, entry);
    }
    entry.ids.add(id);
    try {
      await entry.ready;
    } catch (err) {
      this.unsubscribe(id);
      throw err;
    }
    return id;
  }

  unsubscribe(id: number): void {
    const h = this.handlers.get(id);
    if (!h) return;
    this.handlers.delete(id);
    const entry = this.byChannel.get(h.channel);
    entry?.ids.delete(id);
    if (entry && entry.ids.size === 0) {
      this.byChannel.delete(h.channel);
      void this.subscriber.sunsubscribe(h.channel).catch(() => {}); // a failed one ends with its connection
    }
  }

  /** Emits `ready` whenever the sharded subscribers were (re)connected and subscribed again. */
  getSubscriber(): Pick<EventEmitter, 'on' | 'off'> {
    return this.events;
  }

  private deliver(channel: string, message: string) {
    const ids = this.byChannel.get(channel)?.ids;
    if (!ids) return;
    let msg: unknown;
    try {
      msg = JSON.parse(message);
    } catch {
      msg = message;
    }
    for (const id of ids) this.handlers.get(id)?.onMessage(msg);
  }
}

export const createShardedPubSub = (opts: { publisher: Cluster; subscriber: Cluster }) => new ShardedPubSub(opts);
