/**
 * Registers the AVA tests of one role: one serial test per section, each asserting that
 * every case is OK (or NON-STRICT with a written reason, or a listed expected failure),
 * then a summary table in the log and a JSON report in the temp directory.
 */
import type { TestFn } from 'ava';
import { FULL, SECTIONS, casesOf } from './cases';
import { Connector } from './peers';
import { details, summaryTable, unaccepted, writeReport } from './report';
import { runCases } from './run';
import { Case, CaseResult } from './types';

export interface RoleOptions {
  /** The program under test: 'echo-server' or 'echo-client'. */
  peer: string;
  /** Starts what the role needs; returns the connector and a teardown. */
  setup(): Promise<{ connector: Connector; teardown(): Promise<void> }>;
  /** Cases this role leaves out of the default run (never out of the full run). */
  skipByDefault?: (c: Case) => boolean;
}

export function registerRole(test: TestFn, opts: RoleOptions): void {
  let connector: Connector | undefined;
  let teardown: (() => Promise<void>) | undefined;
  const results: CaseResult[] = [];

  test.before(async (t) => {
    t.timeout(120_000); // starting the program under test through ts-node: see startServerProgram
    ({ connector, teardown } = await opts.setup());
  });

  test.after.always(async (t) => {
    await teardown?.();
    if (results.length === 0) return;
    const file = writeReport(`${opts.peer}${FULL ? '-full' : ''}`, results, FULL);
    t.log(`\n${summaryTable(results)}\nreport: ${file}`);
  });

  for (const [num, name] of Object.entries(SECTIONS)) {
    const section = Number(num);
    const cases = casesOf(section).filter((c) => FULL || !opts.skipByDefault?.(c));
    if (cases.length === 0) continue;
    test.serial(`${opts.peer}: section ${section} (${name}), ${cases.length} cases`, async (t) => {
      t.timeout(section === 9 || section >= 12 ? (FULL ? 600_000 : 240_000) : 120_000);
      const rs = await runCases(cases, connector!, opts.peer);
      results.push(...rs);
      t.log(`\n${summaryTable(rs)}`);
      for (const line of details(rs, section === 9 || section === 10)) t.log(line);
      t.deepEqual(unaccepted(rs), []);
    });
  }
}
