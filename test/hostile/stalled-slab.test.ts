/**
 * A peer that stops reading holds what we send it in memory until it reads or `sendTimeout`
 * drops it. Small frames are cut from shared slabs (Node's 8 KiB pool, our frame slab), so a
 * held 18-byte frame used to keep a whole slab alive: 8,179 bytes of memory for each one of
 * 3,000 held frames in this scenario, where the send-side bound (`maxBackpressure`) counts 18.
 * A small chunk that has to wait now waits in a copy of its own size, and a Ping's payload,
 * held until it is sent, is a buffer of its own. Small frames sent while the socket is behind
 * are gathered in one buffer (AsyncSocket's backlog) instead of one write each, which held
 * about 800 bytes of heap per 18-byte frame; so are the Pongs owed to a peer that floods us
 * with Pings and reads nothing (700 bytes of heap per 2-byte Pong before).
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
  extraPerFrame: number;
  heapPerFrame: number;
  chunks: number;
  pooled: number;
}

interface PongFigures {
  pings: number;
  heap: number;
  buffers: number;
  unsent: number;
  chunks: number;
}

function describe(f: Figures): string {
  return (
    `${f.frames} frames held: ${f.extraPerFrame.toFixed(0)} B of buffer memory each beyond their own bytes, ` +
    `${f.heapPerFrame.toFixed(0)} B of heap each (the test's own promise included); ${f.chunks} chunks wait in the socket, ${f.pooled} of them views into a larger buffer`
  );
}

test('small frames and Pongs held for a peer that does not read keep no slab alive, and share one chunk', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'wsframe-stalled-slab-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const js = transpileTree(out, [
    path.join(ROOT, 'test', 'hostile', 'stalled-slab-child.ts'),
    path.join(ROOT, 'test', 'helpers', 'socket-pair.ts'),
    path.join(ROOT, 'test', 'helpers', 'wait.ts')
  ]);
  const child = js(path.join(ROOT, 'test', 'hostile', 'stalled-slab-child.ts'));
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', child, '3000'], { timeout: 50_000 }, (err, so, se) =>
      err ? reject(new Error(`${err.message}\n${se}`)) : resolve(so)
    );
  });
  const { mixed, small, pongs } = JSON.parse(stdout.trim().split('\n').pop()!) as { mixed: Figures; small: Figures; pongs: PongFigures };
  t.log(`16 B messages, 2,000 B messages and 16 B Pings: ${describe(mixed)}`);
  t.log(`16 B messages only: ${describe(small)}`);
  for (const f of [mixed, small]) {
    t.is(f.pooled, 0, 'no waiting chunk is a small view into a larger buffer');
    // Before: 8,179 bytes each (Node's pool). A few slabs may be partly kept by the first frames.
    t.true(f.extraPerFrame < 256, `${f.extraPerFrame} bytes of buffer memory kept per held frame`);
  }
  // Small frames sent while the socket is behind wait together in one buffer, not one write
  // each with its own queue entry, chunk and promise (797 B of heap per frame before).
  t.true(small.chunks <= 4, `${small.chunks} chunks for ${small.frames} small frames`);
  t.true(small.heapPerFrame < 300, `${small.heapPerFrame} B of heap per held small frame`);

  // A flood of empty Pings (6 bytes each to send, a 2-byte Pong owed for each) from a peer
  // that reads nothing, while a little of our output waits: the Pongs join the backlog (no
  // write, chunk or promise each) and past 64 KiB unsent only the latest Ping is answered.
  // Before: one write per Pong, 20,769,480 B of heap for 30,000 and 30,000 chunks waiting.
  t.log(
    `${pongs.pings} empty Pings read from a peer that reads nothing: ${pongs.heap} B of heap, ${pongs.buffers} B of buffers, ` +
      `${pongs.unsent} B of Pongs unsent; ${pongs.chunks} writes wait in the socket (the backlog's marker included)`
  );
  t.true(pongs.heap < 1 << 20, `${pongs.heap} B of heap for ${pongs.pings} Pongs owed`);
  t.true(pongs.unsent <= 2 * pongs.pings && pongs.unsent <= 64 * 1024 + 127, `${pongs.unsent} B of Pongs unsent`);
  t.true(pongs.unsent >= 2 * Math.min(pongs.pings, 30_000), 'the Pongs were answered while under 64 KiB');
  t.true(pongs.chunks <= 4, `${pongs.chunks} writes wait in the socket`);
});
