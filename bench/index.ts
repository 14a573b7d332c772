/**
 * `npm run bench [-- --quick] [-- --only parse-16B]`: wsframe against ws (with bufferutil)
 * in the same run: frame build and parse and the masking / UTF-8 kernels in this process,
 * loopback echo and idle-connection memory in child processes; and wsframe over HTTP/2
 * beside wsframe over HTTP/1.1 (echo-h2 rows). Prints the environment, a table of medians
 * with their spread and the ratio wsframe/ws (>1: wsframe is faster; for memory, <1 is
 * better; echo-h2: h2/h1), then one `JSON {...}` line per result. Progress goes to stderr.
 */
import { placement, profileChildrenInto } from './children';
import { echoRows } from './echo';
import { buildRows } from './frame-build';
import { parseRows } from './frame-parse';
import { environment, gcBetweenRuns, parseArgs, printJson, printTable, runRow, sinkValue, type Row, type RowResult } from './harness';
import { kernelRows } from './mask-utf8';
import { sendRows } from './send';
import { MEMORY_SERVERS, memoryRow, printMemory, printMemoryJson, type MemoryLine, type MemoryResult } from './memory';
import { bufferutilStatus } from './ws-lib';

const SIZES = [16, 1024, 64 * 1024, 1024 * 1024];
// The compressed echo rows (permessage-deflate, JSON-like payloads).
const DEFLATE_SIZES = [1024, 64 * 1024];
// wsframe over HTTP/2 against wsframe over HTTP/1.1: cleartext at every size, TLS at one.
const H2_TLS_SIZES = [64 * 1024];

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const env = environment(bufferutilStatus());
  const dirty = env.commit.endsWith('+dirty') ? ' (src/ has uncommitted changes)' : '';
  console.log(`wsframe benchmark, ${env.date}, commit ${env.commit}${dirty}`);
  console.log(`node ${env.node} (V8 ${env.v8}), ${env.platform}, ${env.cpus} x ${env.cpu}`);
  console.log(`bufferutil: ${env.bufferutil}`);
  console.log(
    `mode: ${opts.quick ? 'quick' : 'full'}; ${opts.repeats} repeats of ${opts.duration} ms after ${opts.warmup} ms warm-up, ` +
      `implementation order alternating between repeats; ${gcBetweenRuns ? 'full GC before each run' : 'no GC between runs'}`
  );
  console.log(
    placement === null
      ? 'echo processes: placed by the scheduler (no taskset, or fewer than 2 CPUs)'
      : `echo processes (taskset): one in flight, server and client on CPU ${placement.rtt[0]}; pipelined, server on CPU ${placement.pipe[0]}, client on CPU ${placement.pipe[1]}`
  );
  console.log('');

  if (opts.profChildren !== null) profileChildrenInto(opts.profChildren);
  const want = (id: string): boolean => opts.only.length === 0 || opts.only.some((s) => id.includes(s));
  // 'wsframe' selects 'wsframe' and its variants ('wsframe hdr-only'); 'ws' only 'ws' and 'ws …'.
  const keep = (name: string): boolean => opts.impl.length === 0 || opts.impl.some((s) => name === s || name.startsWith(`${s} `));
  const echo = echoRows({ plain: SIZES, deflate: DEFLATE_SIZES, h2: SIZES, h2Tls: H2_TLS_SIZES }, want, opts);
  let rows: Row[] = [
    ...buildRows(SIZES, want),
    ...(await sendRows(SIZES, want)),
    ...(await parseRows(SIZES, want)),
    ...kernelRows(want),
    ...echo.rows
  ];
  for (const row of rows) row.impls = row.impls.filter((impl) => keep(impl.name));
  rows = rows.filter((row) => row.impls.length > 0);
  const memoryImpls = (Object.keys(MEMORY_SERVERS) as MemoryLine[]).filter(keep);
  const wantMemory = want('memory-idle') && memoryImpls.length > 0;
  if (rows.length === 0 && !wantMemory) throw new Error(`no row matches --only ${opts.only.join(',')}`);

  const results: RowResult[] = [];
  let memory: MemoryResult | null = null;
  const t0 = Date.now();
  const progress = (id: string) => process.stderr.write(`  ${id} ...`);
  const done = () => process.stderr.write(` done (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  try {
    for (const row of rows) {
      progress(row.id);
      results.push(await runRow(row, opts));
      done();
    }
  } finally {
    await echo.teardown();
  }
  if (wantMemory) {
    const n = opts.connections ?? (opts.quick ? 500 : 2000);
    progress(`memory-idle (${n} connections)`);
    memory = await memoryRow(opts, memoryImpls, n);
    done();
  }

  console.log('');
  if (results.length > 0) printTable(results);
  console.log('');
  console.log('msgs/s and MB/s: medians over the repeats; MB = 10^6 bytes of payload (headers not counted).');
  console.log('ratio: wsframe ÷ ws, the median over the repeats of each wsframe run against the ws run next to it');
  console.log('(>1 means wsframe is faster); ratio IQR: quartiles of those per-repeat ratios.');
  if (results.some((r) => r.group.startsWith('echo-h2'))) {
    console.log('echo-h2 rows: ratio = wsframe over HTTP/2 ÷ wsframe over HTTP/1.1 (msgs/s, JSON ratioH2VsH1; >1 means HTTP/2');
    console.log('is faster); ws has no HTTP/2, so no ws line. echo-h2: both cleartext (h2c with prior knowledge, ws:);');
    console.log('echo-h2-tls: both wss: (ALPN h2 from listen({ http2, tls }) against listen({ tls })).');
  }
  const notes = new Map<string, string>();
  for (const row of rows) {
    const label =
      row.group === 'build' || row.group === 'parse' ? `${row.group} ${row.masked ? 'masked' : 'unmasked'}` : row.group === 'kernel' ? row.id : row.group;
    for (const impl of row.impls) if (impl.note) notes.set(`${label}, ${impl.name}`, impl.note);
  }
  for (const [k, v] of notes) console.log(`  ${k}: ${v}`);
  if (results.some((r) => r.group.startsWith('echo'))) {
    console.log('echo: client and server in separate processes on 127.0.0.1; msgs/s = messages echoed back per second,');
    console.log('MB/s = their payload (each byte crosses loopback twice); p50/p99 µs: round-trip latency (rtt rows).');
  }
  const wireLines = (rs: RowResult[]): void => {
    for (const r of rs) console.log(`  ${r.id}: ${r.impls.map((i) => `${i.name} ${i.metrics?.wire?.toFixed(3) ?? '?'}`).join(', ')}`);
  };
  const compressed = results.filter((r) => r.group.startsWith('echo-deflate'));
  if (compressed.length > 0) {
    console.log('echo-deflate: permessage-deflate on both ends (threshold 1024, zlib level 6, memLevel 8, 15-bit windows,');
    console.log('context takeover), JSON-like payloads; bytes on the wire per payload byte (both directions, headers in):');
    wireLines(compressed);
  }
  const h2c = results.filter((r) => r.group === 'echo-h2-rtt' || r.group === 'echo-h2-pipe');
  if (h2c.length > 0) {
    console.log('echo-h2: bytes on the wire per payload byte (both directions; WebSocket headers, and HTTP/2 frames for h2):');
    wireLines(h2c);
  }
  if (memory !== null) {
    console.log('');
    printMemory(memory);
  }
  console.log('');
  printJson(env, opts, results);
  if (memory !== null) printMemoryJson(memory);
  console.log(`(sink ${sinkValue()})`);
}

// A row whose reader never settles leaves the event loop empty: Node would exit with code 0
// and no table. Say so and fail instead.
let finished = false;
process.on('exit', (code) => {
  if (!finished && code === 0) {
    console.error('bench: the run stopped before finishing (a promise that never settled?)');
    process.exitCode = 1;
  }
});

main().then(
  () => {
    finished = true;
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
