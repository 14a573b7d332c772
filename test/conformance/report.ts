/** Summaries for t.log, the machine-readable report, and the verdict check AVA asserts. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SECTIONS } from './cases';
import { EXPECTED_FAILURES, NON_STRICT } from './expectations';
import { CaseResult } from './types';

/** A table of counts per section: cases, OK, NON-STRICT, FAILED, total time. */
export function summaryTable(results: CaseResult[]): string {
  const rows: string[][] = [['section', 'cases', 'OK', 'NON-STRICT', 'FAILED', 'time']];
  const sections = [...new Set(results.map((r) => r.section))].sort((a, b) => a - b);
  const line = (label: string, rs: CaseResult[]): string[] => [
    label,
    String(rs.length),
    String(rs.filter((r) => r.verdict === 'OK').length),
    String(rs.filter((r) => r.verdict === 'NON-STRICT').length),
    String(rs.filter((r) => r.verdict === 'FAILED').length),
    `${(rs.reduce((s, r) => s + r.durationMs, 0) / 1000).toFixed(1)} s`
  ];
  for (const s of sections) rows.push(line(`${s} ${SECTIONS[s] ?? ''}`.trim(), results.filter((r) => r.section === s)));
  if (sections.length > 1) rows.push(line('all', results));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

/** One line per case that is not OK, and per-case durations when asked (section 9). */
export function details(results: CaseResult[], timings = false): string[] {
  const out: string[] = [];
  for (const r of results) {
    if (r.verdict !== 'OK') out.push(`${r.verdict} ${r.peer} ${r.id} ${r.title}: ${r.reasons.join('; ')}`);
    else if (timings) out.push(`${r.id} ${r.durationMs} ms  ${r.title}`);
  }
  return out;
}

/** The verdicts that are not accepted: FAILED and not expected, NON-STRICT without a written reason, expected failures that pass. */
export function unaccepted(results: CaseResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const key = `${r.peer} ${r.id}`;
    if (r.verdict === 'FAILED' && EXPECTED_FAILURES[key] === undefined) out.push(`${key} FAILED: ${r.reasons.join('; ')}`);
    if (r.verdict === 'NON-STRICT' && NON_STRICT[r.id] === undefined) out.push(`${key} NON-STRICT with no written reason: ${r.reasons.join('; ')}`);
    if (r.verdict !== 'FAILED' && EXPECTED_FAILURES[key] !== undefined) out.push(`${key} now ${r.verdict}: remove it from EXPECTED_FAILURES`);
  }
  return out;
}

/** Directory of the JSON reports: CONFORMANCE_REPORT_DIR, else <tmp>/wsframe-conformance. */
export function reportDir(): string {
  return process.env.CONFORMANCE_REPORT_DIR ?? path.join(os.tmpdir(), 'wsframe-conformance');
}

/** Writes `<dir>/<name>.json` with every result and the accepted exceptions; returns its path. */
export function writeReport(name: string, results: CaseResult[], full: boolean): string {
  const dir = reportDir();
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const counts = (v: string) => results.filter((r) => r.verdict === v).length;
  const report = {
    name,
    full,
    date: new Date().toISOString(),
    node: process.version,
    totals: { cases: results.length, ok: counts('OK'), nonStrict: counts('NON-STRICT'), failed: counts('FAILED') },
    nonStrictReasons: NON_STRICT,
    expectedFailures: EXPECTED_FAILURES,
    results: [...results].sort((a, b) => compareIds(a.id, b.id))
  };
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  return file;
}

export function compareIds(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}
