/** Runs a list of cases against a peer with bounded concurrency. */
import { runCase } from './driver';
import { CaseConnection, Connector } from './peers';
import { Case, CaseResult, sectionOf } from './types';

/** Cases at a time: enough to keep a 2-core machine busy, few enough that timings hold. */
export const CONCURRENCY = 4;

export async function runCases(cases: Case[], connect: Connector, peer: string, concurrency = CONCURRENCY): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  const one = async (i: number, connecting = connect(cases[i]!)): Promise<void> => {
    const c = cases[i]!;
    const started = Date.now();
    try {
      const { conn, extra } = await connecting;
      results[i] = await runCase(c, conn, peer, extra);
    } catch (err) {
      results[i] = {
        id: c.id,
        section: sectionOf(c.id),
        title: c.title,
        peer,
        verdict: 'FAILED',
        reasons: [`could not run: ${(err as Error).message}`],
        durationMs: Date.now() - started
      };
    }
  };
  // Cases marked `alone` run one at a time, after the others.
  const shared = cases.map((c, i) => (c.alone ? -1 : i)).filter((i) => i >= 0);
  const alone = cases.map((c, i) => (c.alone ? i : -1)).filter((i) => i >= 0);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < shared.length) await one(shared[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, shared.length) }, worker));
  // The next connection is set up while a case runs (for echo-client, starting its process
  // takes longer than most cases), so only the first start is paid in full.
  let connecting: Promise<CaseConnection> | undefined;
  for (let k = 0; k < alone.length; k++) {
    const current = connecting ?? connect(cases[alone[k]!]!);
    current.catch(() => {}); // awaited in one(); this only keeps a rejection from going unhandled meanwhile
    connecting = k + 1 < alone.length ? connect(cases[alone[k + 1]!]!) : undefined;
    connecting?.catch(() => {});
    await one(alone[k]!, current);
  }
  return results;
}
