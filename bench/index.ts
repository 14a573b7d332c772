/**
 * `npm run bench [-- --quick] [-- --only parse-16B]`: wsframe against ws (with bufferutil)
 * in the same process. Prints the environment, a table of medians with their spread and the
 * ratio wsframe/ws (>1: wsframe is faster), then one `JSON {...}` line per result.
 * Progress goes to stderr.
 */
import { buildRows } from './frame-build';
import { parseRows } from './frame-parse';
import { environment, gcBetweenRuns, parseArgs, printJson, printTable, runRow, sinkValue, type Row, type RowResult } from './harness';
import { bufferutilStatus } from './ws-lib';

const SIZES = [16, 1024, 64 * 1024, 1024 * 1024];

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
  console.log('');

  const want = (id: string): boolean => opts.only.length === 0 || opts.only.some((s) => id.includes(s));
  const rows: Row[] = [...buildRows(SIZES, want), ...(await parseRows(SIZES, want))];
  if (opts.impl.length > 0) {
    // 'wsframe' selects 'wsframe' and its variants ('wsframe hdr-only'); 'ws' only 'ws'.
    const keep = (name: string): boolean => opts.impl.some((s) => name === s || name.startsWith(`${s} `));
    for (const row of rows) row.impls = row.impls.filter((impl) => keep(impl.name));
  }
  if (rows.length === 0) throw new Error(`no row matches --only ${opts.only.join(',')}`);

  const results: RowResult[] = [];
  const t0 = Date.now();
  for (const row of rows) {
    process.stderr.write(`  ${row.id} ...`);
    results.push(await runRow(row, opts));
    process.stderr.write(` done (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  }

  console.log('');
  printTable(results);
  console.log('');
  console.log('msgs/s and MB/s: medians over the repeats; MB = 10^6 bytes of payload (headers not counted).');
  console.log('ratio: wsframe ÷ ws, the median over the repeats of each wsframe run against the ws run next to it');
  console.log('(>1 means wsframe is faster); ratio IQR: quartiles of those per-repeat ratios.');
  const notes = new Map<string, string>();
  for (const row of rows) for (const impl of row.impls) if (impl.note) notes.set(`${row.group} ${row.masked ? 'masked' : 'unmasked'}, ${impl.name}`, impl.note);
  for (const [k, v] of notes) console.log(`  ${k}: ${v}`);
  console.log('');
  printJson(env, opts, results);
  console.log(`(sink ${sinkValue()})`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
