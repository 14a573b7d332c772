/**
 * `npm run bench:table -- run1.log run2.log …`: README's Performance table from the JSON lines
 * of several full runs of `npm run bench` (their output saved to files). For every row and
 * line (wsframe, wsframe refill, …) it prints the median over the runs of each run's median
 * ratio, and the spread: the lowest first quartile to the highest third quartile of the
 * per-repeat ratios over all runs. Echo rows get the same against raw TCP; the memory row its
 * bytes per connection. Rows missing from a run are left out, not filled in.
 */
import { readFileSync } from 'node:fs';

interface Env {
  type: 'env';
  date: string;
  commit: string;
  node: string;
  cpu: string;
  cpus: number;
  quick: boolean;
  bufferutil: string;
  placement?: unknown;
}

interface Result {
  type: 'result';
  id: string;
  group: string;
  size?: number;
  impl: string;
  baseline: boolean;
  reference?: boolean;
  ratioVsWs?: number | null;
  ratioH2VsH1?: number | null;
  ratioQ1?: number | null;
  ratioQ3?: number | null;
  ratioVsRaw?: number | null;
  rawQ1?: number | null;
  rawQ3?: number | null;
  connections?: number;
  heapBytesPerConn?: number;
  heapBytesOverBare?: number;
  rssBytesPerConn?: number;
  rssRatioVsWs?: number | null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function readRun(file: string): { env: Env; results: Result[] } {
  let env: Env | null = null;
  const results: Result[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('JSON ')) continue;
    const obj = JSON.parse(line.slice(5)) as Env | Result;
    if (obj.type === 'env') env = obj;
    else results.push(obj);
  }
  if (env === null) throw new Error(`${file}: no JSON env line (not the output of npm run bench?)`);
  if (env.quick) throw new Error(`${file}: a --quick run; the table is made of full runs`);
  return { env, results };
}

// One cell: the median of the runs' medians, and the lowest Q1 to the highest Q3.
function cell(rs: Result[], value: (r: Result) => number | null | undefined, q1: (r: Result) => number | null | undefined, q3: (r: Result) => number | null | undefined): string {
  const vs = rs.map(value).filter((v): v is number => typeof v === 'number');
  if (vs.length === 0) return '';
  const lo = Math.min(...rs.map(q1).filter((v): v is number => typeof v === 'number'));
  const hi = Math.max(...rs.map(q3).filter((v): v is number => typeof v === 'number'));
  const spread = Number.isFinite(lo) && Number.isFinite(hi) ? ` (${lo.toFixed(2)}–${hi.toFixed(2)})` : '';
  return `${median(vs).toFixed(2)}${spread}`;
}

// The row without its size: 'parse-16B-masked' → 'parse-masked'.
function rowName(r: Result): string {
  return r.id.replace(/-\d+(B|KiB|MiB)(?=-|$)/, '');
}

function sizeLabel(n: number): string {
  return n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`;
}

function main(): void {
  const files = process.argv.slice(2);
  if (files.length === 0) throw new Error('usage: npm run bench:table -- run1.log run2.log …');
  const runs = files.map(readRun);
  for (const { env } of runs) {
    console.log(`- ${env.date.slice(0, 16).replace('T', ' ')} UTC, commit ${env.commit}, node ${env.node}, ${env.cpus} × ${env.cpu}, bufferutil ${env.bufferutil.split(' ')[0]}`);
  }
  console.log('');
  // Every (group, line) in the order first seen, with its results per size over the runs.
  const lines = new Map<string, Map<number, Result[]>>();
  const sizes = new Set<number>();
  for (const { results } of runs) {
    for (const r of results) {
      if (r.group === 'memory' || r.baseline || r.reference || r.size === undefined) continue;
      const key = `${rowName(r)} | ${r.impl}`;
      const bySize = lines.get(key) ?? new Map<number, Result[]>();
      lines.set(key, bySize);
      bySize.set(r.size, [...(bySize.get(r.size) ?? []), r]);
      sizes.add(r.size);
    }
  }
  const cols = [...sizes].sort((a, b) => a - b);
  console.log(`| row | line | ${cols.map(sizeLabel).join(' | ')} |`);
  console.log(`| --- | --- | ${cols.map(() => '---').join(' | ')} |`);
  for (const [key, bySize] of lines) {
    const [row, impl] = key.split(' | ');
    const cells = cols.map((n) => {
      const rs = bySize.get(n) ?? [];
      return cell(rs, (r) => r.ratioVsWs ?? r.ratioH2VsH1, (r) => r.ratioQ1, (r) => r.ratioQ3);
    });
    if (cells.some((c) => c !== '')) console.log(`| ${row} | ${impl} | ${cells.join(' | ')} |`);
  }
  // Where the runs disagree, two ways: strictly, a run's median outside another run's
  // quartiles; loosely, two runs whose quartile ranges do not even overlap.
  const med = (r: Result): number | null | undefined => r.ratioVsWs ?? r.ratioH2VsH1;
  const quartiled = (r: Result): boolean => typeof med(r) === 'number' && typeof r.ratioQ1 === 'number' && typeof r.ratioQ3 === 'number';
  const disagree: string[] = [];
  const apart: string[] = [];
  let compared = 0;
  for (const [key, bySize] of lines) {
    for (const [n, all] of bySize) {
      const rs = all.filter(quartiled);
      if (rs.length < 2) continue;
      compared++;
      const label = `${key.replace(' | ', ' ')} ${sizeLabel(n)} (${rs.map((r) => `${med(r)!.toFixed(2)} [${r.ratioQ1!.toFixed(2)}–${r.ratioQ3!.toFixed(2)}]`).join(' / ')})`;
      const pairs = rs.flatMap((a) => rs.filter((b) => b !== a).map((b) => [a, b] as const));
      if (pairs.some(([a, b]) => med(a)! < b.ratioQ1! || med(a)! > b.ratioQ3!)) disagree.push(label);
      if (pairs.some(([a, b]) => a.ratioQ3! < b.ratioQ1!)) apart.push(label);
    }
  }
  console.log('');
  console.log(
    disagree.length === 0
      ? `Every run's median lies within the quartiles of every other run (${compared} lines).`
      : `${disagree.length} of ${compared} lines have a run's median outside another run's quartiles: ${disagree.join('; ')}.`
  );
  console.log('');
  console.log(
    apart.length === 0
      ? `The runs' quartile ranges overlap on every line (${compared}).`
      : `${apart.length} of ${compared} lines have runs whose quartile ranges do not overlap: ${apart.join('; ')}.`
  );
  console.log('');
  console.log('Against raw TCP (wsframe ÷ raw, ws ÷ raw):');
  console.log('');
  console.log(`| row | line | ${cols.map(sizeLabel).join(' | ')} |`);
  console.log(`| --- | --- | ${cols.map(() => '---').join(' | ')} |`);
  const rawLines = new Map<string, Map<number, Result[]>>();
  for (const { results } of runs) {
    for (const r of results) {
      if (r.ratioVsRaw === undefined || r.reference || r.size === undefined) continue;
      const key = `${rowName(r)} | ${r.impl}`;
      const bySize = rawLines.get(key) ?? new Map<number, Result[]>();
      rawLines.set(key, bySize);
      bySize.set(r.size, [...(bySize.get(r.size) ?? []), r]);
    }
  }
  for (const [key, bySize] of rawLines) {
    const [row, impl] = key.split(' | ');
    const cells = cols.map((n) => cell(bySize.get(n) ?? [], (r) => r.ratioVsRaw, (r) => r.rawQ1, (r) => r.rawQ3));
    console.log(`| ${row} | ${impl} | ${cells.join(' | ')} |`);
  }
  console.log('');
  console.log('Memory per idle connection (medians over the runs; run values in brackets):');
  console.log('');
  console.log('| line | heap per connection | over a bare socket | heap ÷ ws | RSS per connection | RSS ÷ ws |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  const mem = new Map<string, Result[]>();
  for (const { results } of runs) for (const r of results) if (r.group === 'memory') mem.set(r.impl, [...(mem.get(r.impl) ?? []), r]);
  const kib = (xs: (number | undefined)[]): string => {
    const vs = xs.filter((v): v is number => typeof v === 'number');
    return vs.length === 0 ? '' : `${(median(vs) / 1024).toFixed(2)} KiB [${vs.map((v) => (v / 1024).toFixed(2)).join(', ')}]`;
  };
  const ratioOf = (xs: (number | null | undefined)[]): string => {
    const vs = xs.filter((v): v is number => typeof v === 'number');
    return vs.length === 0 ? '' : `${median(vs).toFixed(2)} [${vs.map((v) => v.toFixed(2)).join(', ')}]`;
  };
  for (const [impl, rs] of mem) {
    console.log(
      `| ${impl} (${rs[0]!.connections} connections) | ${kib(rs.map((r) => r.heapBytesPerConn))} | ${kib(rs.map((r) => r.heapBytesOverBare))} | ` +
        `${ratioOf(rs.map((r) => r.ratioVsWs))} | ${kib(rs.map((r) => r.rssBytesPerConn))} | ${ratioOf(rs.map((r) => r.rssRatioVsWs))} |`
    );
  }
}

main();
