/**
 * Prints the functions with the most self time in a V8 `.cpuprofile`, e.g.
 *
 * ```sh
 * node --cpu-prof --cpu-prof-dir=.bench-out -r ts-node/register/transpile-only bench/index.ts \
 *   --only parse-16B-masked --impl wsframe --duration 2000 --repeats 2
 * node -r ts-node/register/transpile-only bench/profile-top.ts .bench-out/CPU.*.cpuprofile [count]
 * ```
 *
 * For the echo rows' child processes (`--prof-children DIR`), paths under
 * `.bench-out/peer-js-<pid>/` are shown without that prefix, with JavaScript line numbers.
 *
 * Self time is what V8 sampled inside the function itself (callees excluded); inlined
 * functions are counted in the function they were inlined into.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

function main(): void {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: profile-top.ts FILE.cpuprofile [count]');
  const count = Number(process.argv[3] ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);

  // Time per node from samples and their time deltas (more exact than hitCount alone).
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

  const byFunction = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    // Child processes run src/ transpiled into .bench-out/peer-js-<pid>/: show it as src/…
    // (the line is then of the transpiled JavaScript, close to but not always the .ts line).
    const file = cf.url ? path.relative(process.cwd(), cf.url.replace(/^file:\/\//, '')).replace(/^\.bench-out\/peer-js-\d+\//, '') : '';
    const where = file ? `${file}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}${where ? `  ${where}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  const top = [...byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
  console.log(`total sampled ${(total / 1000).toFixed(0)} ms`);
  for (const [key, us] of top) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
  }
}

main();
