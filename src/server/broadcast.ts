/**
 * `broadcast()` of a `listen` server: one message to every open connection, with a bound per
 * connection on what may wait unsent (`maxBackpressure`, `backpressurePolicy`).
 * @module
 */
import { AsyncSocket } from '../connection/async-socket';
import { CloseCode } from '../core/constants';
import { close } from '../connection/closing';
import { sendText, sendBinary } from '../connection/send';

const noop = (): void => {};

// Resolves when one of `sends` is fulfilled or all have settled (a peer that went away is
// not the others' problem).
// What a broadcast send that waits in a connection's send queue (behind a compressed or
// fragmented message) costs beside its bytes, counted against maxBackpressure: its queue
// entry, promises and their reactions (measured: about 300 bytes of heap each).
const QUEUED_COST = 512;

/**
 * `broadcast` with a bound per connection. A connection holding more than `maxBackpressure`
 * unsent bytes is closed (1008) or skipped. Otherwise the message is sent, and broadcast waits,
 * for at most `broadcastWait` ms, for the connections that keep up: a connection that has not
 * flushed by then is *behind*, and is no longer waited for until it has flushed everything.
 * Among those behind, the first one that makes progress is waited for, so the pace is set by a
 * client that reads even when the only ones "keeping up" are stalled clients whose kernel
 * buffers still take what we send; one that makes no progress costs nothing. When every
 * connection is behind and none moves, each broadcast waits broadcastWait.
 *
 * Nothing is hung on a send per message: the small frames sent to a connection that is behind
 * share one promise (its backlog's), which is watched once, however many messages joined it
 * (a reaction per message on it would stay until the connection is dropped: 20-byte
 * broadcasts to stalled clients held 5-15 MiB each while they reported 1 MiB unsent).
 */
export class Broadcaster {
  // Bytes of broadcast messages that wait in a connection's send queue (behind a fragmented
  // or compressed message), so not in its socket's write buffer yet.
  private readonly queued = new WeakMap<AsyncSocket, number>();
  // Connections behind, with their unsent bytes just after the last broadcast.
  private readonly behind = new WeakMap<AsyncSocket, number>();
  // The send of each connection that is watched now (one reaction each, however many
  // messages share it), and the broadcasts waiting for the first of those behind to move.
  private readonly watched = new WeakMap<AsyncSocket, Promise<void>>();
  private readonly moved = new Set<() => void>();

  constructor(
    private readonly clients: ReadonlySet<AsyncSocket>,
    private readonly maxBackpressure: number,
    private readonly policy: 'close' | 'skip',
    private readonly wait: number
  ) {}

  /**
   * Bytes a connection has been given and the kernel has not taken: its write buffer (less
   * the small frames held only until the end of this turn) plus broadcasts queued.
   */
  unsent(ws: AsyncSocket): number {
    return ws.unsentBytes + (this.queued.get(ws) ?? 0);
  }

  // Watches a send once: when it settles, the broadcasts waiting for one of those behind to
  // move go on. Its rejection is handled here too (the connection's own read loop sees the
  // failure: a broadcast must not leave it unhandled, that ends the process).
  private watch(ws: AsyncSocket, sent: Promise<void>): void {
    if (this.watched.get(ws) === sent) return;
    this.watched.set(ws, sent);
    const settled = (): void => {
      if (this.watched.get(ws) === sent) this.watched.delete(ws);
      for (const go of this.moved) go();
      this.moved.clear();
    };
    sent.then(settled, settled);
  }

  // Resolves when a watched send settles; `cancel` forgets it (the broadcast went on anyway).
  private nextMove(): { moved: Promise<void>; cancel: () => void } {
    let go!: () => void;
    const moved = new Promise<void>((resolve) => (go = resolve));
    this.moved.add(go);
    return { moved, cancel: () => this.moved.delete(go) };
  }

  send(data: string | Uint8Array): Promise<void> {
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const current: AsyncSocket[] = [];
    const flushes: Promise<void>[] = []; // to the connections that keep up
    let behindSent = 0;
    for (const ws of this.clients) {
      if (ws.closeQueued || ws.destroyed) continue;
      const before = this.unsent(ws);
      if (before > this.maxBackpressure) {
        if (this.policy === 'close') close(ws, CloseCode.PolicyViolation, 'too slow').catch(noop);
        continue;
      }
      if (before === 0) this.behind.delete(ws); // it caught up
      const sent = typeof data === 'string' ? sendText(ws, data) : sendBinary(ws, data);
      this.watch(ws, sent);
      if (ws.sendQueue !== null) {
        // Not written yet: it waits its turn (or for zlib). Count it until it is flushed, with
        // what waiting costs beside its bytes (its place in the queue and its promise).
        const cost = size + QUEUED_COST;
        this.queued.set(ws, (this.queued.get(ws) ?? 0) + cost);
        const done = (): void => void this.queued.set(ws, this.queued.get(ws)! - cost);
        sent.then(done, done);
      }
      if (!this.behind.has(ws)) {
        current.push(ws);
        flushes.push(sent);
      } else {
        behindSent++;
        this.behind.set(ws, this.unsent(ws));
      }
    }
    const waits: Promise<unknown>[] = [];
    if (flushes.length > 0) waits.push(Promise.allSettled(flushes));
    let move: { moved: Promise<void>; cancel: () => void } | null = null;
    if (behindSent > 0) {
      // With nobody keeping up, the first of those behind to move sets the pace.
      if (flushes.length === 0) {
        move = this.nextMove();
        waits.push(move.moved);
      }
      // With connections behind, give I/O one turn even when every write completed at once,
      // so that their progress (or its absence) shows by the next broadcast.
      waits.push(new Promise((resolve) => setImmediate(resolve)));
    }
    if (waits.length === 0) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.wait)));
    return Promise.race([Promise.all(waits), elapsed]).then(() => {
      clearTimeout(timer);
      move?.cancel();
      for (const ws of current) if (!ws.destroyed && this.unsent(ws) > 0) this.behind.set(ws, this.unsent(ws));
    });
  }
}
