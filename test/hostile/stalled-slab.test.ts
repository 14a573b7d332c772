/**
 * A peer that stops reading holds what we send it in memory until it reads or `sendTimeout`
 * drops it. Small frames are cut from shared slabs (Node's 8 KiB pool, our frame slab), so a
 * held 18-byte frame used to keep a whole slab alive: 8,179 bytes of memory for each one of
 * 3,000 held frames in this scenario, where the send-side bound (`maxBackpressure`) counts 18.
 * A small chunk that has to wait now waits in a copy of its own size, and a Ping's payload,
 * held until it is sent, is a buffer of its own.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, transpileTree } from '../helpers/transpile';

interface Figures {
  frames: number;
  accounted: number;
  held: number;
  extraPerFrame: number;
  heapPerFrame: number;
  chunks: number;
  pooled: number;
}

test('small frames held for a peer that does not read keep no slab alive', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'wsframe-stalled-slab-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const js = transpileTree(out, [
    path.join(ROOT, 'test', 'hostile', 'stalled-slab-child.ts'),
    path.join(ROOT, 'test', 'helpers', 'socket-pair.ts'),
    path.join(ROOT, 'test', 'helpers', 'wait.ts')
  ]);
  const child = js(path.join(ROOT, 'test', 'hostile', 'stalled-slab-child.ts'));
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', child, '1000'], { timeout: 50_000 }, (err, so, se) =>
      err ? reject(new Error(`${err.message}\n${se}`)) : resolve(so)
    );
  });
  const f = JSON.parse(stdout.trim().split('\n').pop()!) as Figures;
  t.log(
    `${f.frames} frames (16 B data, 2,000 B data, 16 B Ping) held for a peer that reads nothing: ` +
      `${f.extraPerFrame.toFixed(0)} B of buffer memory each beyond their own bytes, ` +
      `${f.heapPerFrame.toFixed(0)} B of heap each; ${f.pooled} of ${f.chunks} waiting chunks are views into a larger buffer`
  );
  t.is(f.pooled, 0, 'no waiting chunk is a small view into a larger buffer');
  // Before: 8,179 bytes each. A few slabs may be partly kept by the first frames.
  t.true(f.extraPerFrame < 256, `${f.extraPerFrame} bytes of buffer memory kept per held frame`);
});
