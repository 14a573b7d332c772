/**
 * Sections 9 and 10: large messages and many messages, timed, and messages arriving in many
 * fragments of varying size. The 16 MiB messages and the slowest cases run only when
 * CONFORMANCE_FULL=1.
 */
import { Case, OP } from '../types';
import { binaryPayload, prng, textPayload } from '../wire';
import { awaitMessages, binary, eBinary, eText, fragments, fragmentsOf, ping, send, text } from './build';

const KiB = 1024;
const MiB = 1024 * 1024;

function size(n: number): string {
  return n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n} bytes`;
}

/**
 * The timeout of a case moving `bytes` through an echo: a bound on the peer's silence (see
 * Conn.waitFor), ample for the peer to take in a message of that size before echoing it.
 */
function timeoutFor(bytes: number, extraMs = 0): number {
  return 10_000 + Math.ceil(bytes / MiB) * 1500 + extraMs;
}

// Lazily built and shared: the same big payloads serve several cases.
const cache = new Map<string, Buffer>();
function payload(kind: 'text' | 'binary', n: number): Buffer {
  const key = `${kind}:${n}`;
  let p = cache.get(key);
  if (!p) {
    p = kind === 'text' ? textPayload(n, true) : binaryPayload(n, n);
    cache.set(key, p);
  }
  return p;
}

function section9(): Case[] {
  const out: Case[] = [];
  const kinds = [
    ['text', text, eText],
    ['binary', binary, eBinary]
  ] as const;
  kinds.forEach(([kind, mk, ex], k) => {
    [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB].forEach((n, i) => {
      const p = payload(kind, n);
      out.push({
        id: `9.${1 + k}.${i + 1}`,
        title: `${kind} message of ${size(n)} in one frame`,
        steps: [send([mk(p)])],
        expect: [ex(p)],
        timeout: timeoutFor(n),
        alone: true,
        full: n >= 8 * MiB
      });
    });
  });
  kinds.forEach(([kind, , ex], k) => {
    const p = payload(kind, 4 * MiB);
    [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB].forEach((f, i) => {
      out.push({
        id: `9.${3 + k}.${i + 1}`,
        title: `${kind} message of 4 MiB in fragments of ${size(f)}`,
        steps: [send(fragmentsOf(kind === 'text' ? OP.text : OP.binary, p, f))],
        expect: [ex(p)],
        timeout: timeoutFor(4 * MiB, 10_000),
        alone: true,
        full: f < KiB
      });
    });
  });
  kinds.forEach(([kind, mk, ex], k) => {
    const p = payload(kind, MiB);
    [64, 128, 256, 512, KiB, 2 * KiB].forEach((c, i) => {
      out.push({
        id: `9.${5 + k}.${i + 1}`,
        title: `${kind} message of 1 MiB in one frame, written in TCP chunks of ${c} bytes`,
        steps: [send([mk(p)], c)],
        expect: [ex(p)],
        timeout: timeoutFor(MiB, 30_000),
        alone: true,
        full: c < 256
      });
    });
  });
  kinds.forEach(([kind, mk, ex], k) => {
    [0, 16, 64, 256, KiB, 4 * KiB].forEach((n, i) => {
      const p = payload(kind, n);
      const steps = [];
      for (let m = 1; m <= 1000; m++) steps.push(send([mk(p)]), awaitMessages(m));
      out.push({
        id: `9.${7 + k}.${i + 1}`,
        title: `1000 ${kind} messages of ${size(n)}, each sent once the previous echo is back (round trips)`,
        steps,
        expect: Array.from({ length: 1000 }, () => ex(p)),
        timeout: 30_000,
        alone: true,
        full: n > 256
      });
    });
  });
  return out;
}

/** Fragment sizes drawn from [1, max] by a fixed seed. */
function randomSizes(seed: number, max: number): (i: number) => number {
  const r = prng(seed);
  return () => 1 + Math.floor(r() * max);
}

function section10(): Case[] {
  const t64 = payload('text', 64 * KiB);
  const b64 = payload('binary', 64 * KiB);
  const t1m = payload('text', MiB);
  const b1m = payload('binary', MiB);
  const t256 = payload('text', 256 * KiB);
  const b2m = payload('binary', 2 * MiB);
  const withPings = fragments(OP.binary, b1m, randomSizes(4, 32 * KiB)).flatMap((f, i) =>
    !f.fin && i % 16 === 15 ? [f, ping(`p${i}`)] : [f]
  );
  const pongs = withPings.filter((f) => f.op === OP.ping).map((f) => ({ op: 'pong' as const, data: f.data as Buffer }));
  const r = prng(5);
  return [
    { title: 'text message of 64 KiB in fragments of 1300 bytes', steps: [send(fragmentsOf(OP.text, t64, 1300))], expect: [eText(t64)] },
    { title: 'binary message of 64 KiB in fragments of 1 to 4096 bytes', steps: [send(fragments(OP.binary, b64, randomSizes(1, 4096)))], expect: [eBinary(b64)] },
    {
      title: 'text message of 1 MiB (1- to 4-byte characters) in fragments of 1 byte to 64 KiB',
      steps: [send(fragments(OP.text, t1m, randomSizes(2, 64 * KiB)))],
      expect: [eText(t1m)],
      timeout: timeoutFor(MiB)
    },
    { title: 'binary message of 1 MiB in fragments of 1 byte to 32 KiB, a ping after every 16th', steps: [send(withPings)], expect: [...pongs, eBinary(b1m)], timeout: timeoutFor(MiB) },
    {
      title: 'text message of 256 KiB in fragments of 1 to 8192 bytes, written in TCP chunks of 1 to 3000 bytes',
      steps: fragments(OP.text, t256, randomSizes(3, 8 * KiB)).map((f) => send([f], 1 + Math.floor(r() * 3000))),
      expect: [eText(t256)],
      timeout: timeoutFor(MiB)
    },
    {
      title: 'binary message of 2 MiB in fragments doubling in size from 1 byte',
      steps: [send(fragments(OP.binary, b2m, (i) => 2 ** Math.min(i, 20)))],
      expect: [eBinary(b2m)],
      timeout: timeoutFor(2 * MiB)
    }
  ].map((c, i) => ({ id: `10.1.${i + 1}`, ...c }));
}

export function largeCases(): Case[] {
  return [...section9(), ...section10()];
}
