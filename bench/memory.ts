/**
 * Memory per idle connection: N WebSocket connections held open against a server process
 * (wsframe `listen()` with its echo loop waiting in `readData`, or ws `WebSocketServer` with
 * its 'message' handler), opened by a third process with raw handshakes (the same client for
 * both servers). The server's heapUsed and RSS are read after three full GCs
 * (`--expose-gc`) before and after; the difference over N is the cost of one connection.
 *
 * Each repeat starts a fresh server process; the implementations alternate order between
 * repeats. Before the "before" reading, a few connections are opened and dropped so that
 * code loaded on first use (HTTP parser, handshake) is not charged to the connections.
 * Lower is better: the ratio is wsframe / ws of heap per connection.
 *
 * The `raw` line is the floor: the same connector's sockets held by a bare `node:net` server
 * (which answers the handshake with a bare 101 and keeps nothing else). What a library adds
 * to an accepted socket is its heap per connection minus this line's ("over bare").
 */
import { startPeer, type Peer } from './children';
import { median, printColumns, quantile, type Options } from './harness';
import type { MemResult } from './peer';

/**
 * The servers of the memory row, by line name: the server peer's argv after `server`.
 * `wsframe messages` is the loop README recommends (`for await … of messages(ws)`), beside
 * the bench's own `readData` loop.
 */
export const MEMORY_SERVERS = {
  wsframe: ['wsframe'],
  'wsframe messages': ['wsframe', 'messages'],
  ws: ['ws'],
  raw: ['raw']
} as const;
export type MemoryLine = keyof typeof MEMORY_SERVERS;

const PRIMING_CONNECTIONS = 20;
const CONCURRENCY = 100;
const SETTLE_MS = 300;

export interface MemorySample {
  heapPerConn: number;
  rssPerConn: number;
  externalPerConn: number;
}

/** One line of the memory row, with its ratios against ws (null for ws itself). */
export interface MemoryLineResult {
  name: MemoryLine;
  samples: MemorySample[];
  heapPerConn: number;
  rssPerConn: number;
  externalPerConn: number;
  /** Median and IQR of the per-repeat ratios line ÷ ws of heap (and RSS) per connection. */
  heapRatio: number | null;
  heapRatioIqr: [number, number] | null;
  rssRatio: number | null;
}

export interface MemoryResult {
  id: string;
  connections: number;
  impls: MemoryLineResult[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(impl: MemoryLine, connector: Peer, n: number): Promise<MemorySample> {
  const server = await startPeer(['server', ...MEMORY_SERVERS[impl]]);
  try {
    const port = server.ready.port!;
    await connector.call({ cmd: 'connect-idle', port, count: PRIMING_CONNECTIONS, concurrency: CONCURRENCY }, 30_000);
    await connector.call({ cmd: 'close-idle' }, 10_000);
    await sleep(SETTLE_MS);
    const before = await server.call<MemResult>({ cmd: 'mem' }, 30_000);
    if (before.connections !== 0) throw new Error(`memory ${impl}: ${before.connections} connections left before`);
    const opened = await connector.call<number>({ cmd: 'connect-idle', port, count: n, concurrency: CONCURRENCY }, 120_000);
    if (opened !== n) throw new Error(`memory ${impl}: opened ${opened} of ${n}`);
    await sleep(SETTLE_MS);
    const after = await server.call<MemResult>({ cmd: 'mem' }, 30_000);
    if (after.connections !== n) throw new Error(`memory ${impl}: server has ${after.connections} connections, want ${n}`);
    return {
      heapPerConn: (after.heapUsed - before.heapUsed) / n,
      rssPerConn: (after.rss - before.rss) / n,
      externalPerConn: (after.external - before.external) / n
    };
  } finally {
    await connector.call({ cmd: 'close-idle' }, 30_000).catch(() => undefined);
    await server.stop();
  }
}

export async function memoryRow(opts: Options, impls: MemoryLine[], connections: number): Promise<MemoryResult> {
  const repeats = opts.quick ? 2 : 3;
  const samples = new Map<MemoryLine, MemorySample[]>(impls.map((i) => [i, []]));
  const connector = await startPeer(['connector']);
  try {
    for (let r = 0; r < repeats; r++) {
      const order = r % 2 === 0 ? impls : [...impls].reverse();
      for (const impl of order) samples.get(impl)!.push(await measure(impl, connector, connections));
    }
  } finally {
    await connector.stop();
  }
  const b = samples.get('ws');
  return {
    id: 'memory-idle',
    connections,
    impls: impls.map((name) => {
      const s = samples.get(name)!;
      const heapRatios = b && name !== 'ws' ? s.map((x, i) => x.heapPerConn / b[i]!.heapPerConn) : null;
      const rssRatios = b && name !== 'ws' ? s.map((x, i) => x.rssPerConn / b[i]!.rssPerConn) : null;
      return {
        name,
        samples: s,
        heapPerConn: median(s.map((x) => x.heapPerConn)),
        rssPerConn: median(s.map((x) => x.rssPerConn)),
        externalPerConn: median(s.map((x) => x.externalPerConn)),
        heapRatio: heapRatios ? median(heapRatios) : null,
        heapRatioIqr: heapRatios ? [quantile(heapRatios, 0.25), quantile(heapRatios, 0.75)] : null,
        rssRatio: rssRatios ? median(rssRatios) : null
      };
    })
  };
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(2);

export function printMemory(m: MemoryResult): void {
  const bare = m.impls.find((impl) => impl.name === 'raw');
  const head = ['row', 'impl', 'heap KiB/conn', 'over bare', 'heap min–max', 'RSS KiB/conn', 'external KiB/conn', 'heap ratio', 'ratio IQR', 'RSS ratio'];
  const lines = m.impls.map((impl) => {
    const heaps = impl.samples.map((s) => s.heapPerConn);
    return [
      m.id,
      impl.name,
      kib(impl.heapPerConn),
      bare && impl !== bare ? kib(impl.heapPerConn - bare.heapPerConn) : '',
      `${kib(Math.min(...heaps))}–${kib(Math.max(...heaps))}`,
      kib(impl.rssPerConn),
      kib(impl.externalPerConn),
      impl.heapRatio !== null ? impl.heapRatio.toFixed(2) : '',
      impl.heapRatioIqr ? `${impl.heapRatioIqr[0].toFixed(2)}–${impl.heapRatioIqr[1].toFixed(2)}` : '',
      impl.rssRatio !== null ? impl.rssRatio.toFixed(2) : ''
    ];
  });
  printColumns(head, lines, [false, false, ...head.slice(2).map(() => true)]);
  console.log(
    `memory: ${m.connections} idle connections to one server process, heapUsed and RSS after full GCs, ` +
      `(after − before) / ${m.connections}; medians of ${m.impls[0]?.samples.length ?? 0} repeats, a fresh server each.`
  );
  console.log('ratio: each line ÷ ws per connection — LOWER IS BETTER for memory (<1: uses less than ws).');
  if (bare) console.log('raw: a bare node:net server holding the same sockets; over bare: heap per connection minus raw\'s.');
}

export function printMemoryJson(m: MemoryResult): void {
  const bare = m.impls.find((impl) => impl.name === 'raw');
  for (const impl of m.impls) {
    console.log(
      `JSON ${JSON.stringify({
        type: 'result',
        id: m.id,
        group: 'memory',
        impl: impl.name,
        baseline: impl.name === 'ws',
        connections: m.connections,
        heapBytesPerConn: Math.round(impl.heapPerConn),
        ...(bare && impl !== bare ? { heapBytesOverBare: Math.round(impl.heapPerConn - bare.heapPerConn) } : {}),
        rssBytesPerConn: Math.round(impl.rssPerConn),
        externalBytesPerConn: Math.round(impl.externalPerConn),
        ratioVsWs: impl.heapRatio,
        ratioQ1: impl.heapRatioIqr?.[0] ?? null,
        ratioQ3: impl.heapRatioIqr?.[1] ?? null,
        rssRatioVsWs: impl.rssRatio,
        lowerIsBetter: true,
        repeats: impl.samples.length
      })}`
    );
  }
}
