/**
 * Every split point over real sockets: a stream of frames written by a raw peer in two
 * writes, split at each offset (the second write waits until the first has been received),
 * and byte by byte. `readData` must return the same messages every time. Also a frame split
 * between the `head` bytes handed over after the HTTP upgrade and the socket.
 */
import test, { ExecutionContext } from 'ava';
import net from 'node:net';
import { AsyncSocket, makeFrame, Message, Opcode, readData, Role } from '../../src';
import { Collector, PEER_KEY, rawPair, socketPair, until, within } from '../helpers/socket-pair';

const KEYS = [
  Buffer.from([0x11, 0x22, 0x33, 0x44]),
  Buffer.from([0xff, 0x00, 0x80, 0x7f]),
  Buffer.from([0, 0, 0, 0]),
  Buffer.from([0x9a, 0xbc, 0xde, 0xf0])
];

function frame(role: Role, i: number, opcode: number, data: Buffer | string, fin = true): Buffer {
  return makeFrame(
    { fin, rsv1: false, rsv2: false, rsv3: false, masked: role === 'server', opcode: opcode as Opcode, data: Buffer.from(data) },
    KEYS[i % KEYS.length]
  );
}

const closeData = Buffer.from([0x03, 0xe8, 0x6f, 0x6b]); // 1000 "ok"
const binary1 = Buffer.from(Array.from({ length: 126 }, (_, i) => (i * 7) & 0xff)); // 16-bit length
const binary2 = Buffer.from([0xde, 0xad, 0xbe]);

/** Text, a fragmented Binary with a Ping in between, then Close, as the raw peer sends it. */
function stream(role: Role): Buffer {
  return Buffer.concat([
    frame(role, 0, Opcode.Text, 'héllo'),
    frame(role, 1, Opcode.Binary, binary1, false),
    frame(role, 2, Opcode.Ping, 'p!'),
    frame(role, 3, Opcode.Cont, binary2, true),
    frame(role, 4, Opcode.Close, closeData)
  ]);
}

const expected: Message[] = [
  { opcode: Opcode.Text, data: Buffer.from('héllo') },
  { opcode: Opcode.Ping, data: Buffer.from('p!') },
  { opcode: Opcode.Binary, data: Buffer.concat([binary1, binary2]) },
  { opcode: Opcode.Close, data: closeData }
];

/** Reads messages until a Close (bounded by the number expected). */
async function readAll(ws: AsyncSocket, max: number): Promise<Message[]> {
  const out: Message[] = [];
  for (let i = 0; i < max; i++) {
    const m = await readData(ws);
    // Copy: the data may be a view of a receive buffer.
    out.push({ opcode: m.opcode, data: Buffer.from(m.data) });
    if (m.opcode === Opcode.Close) break;
  }
  return out;
}

/** Writes `parts` one by one, each only after the previous ones were received. */
async function run(role: Role, parts: Buffer[]): Promise<Message[]> {
  const [ours, raw] = await socketPair();
  try {
    const ws = new AsyncSocket(ours, { role });
    new Collector(raw); // drain the pong and the close echo
    const reading = readAll(ws, expected.length + 1);
    reading.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
    let sent = 0;
    for (const part of parts) {
      raw.write(part);
      sent += part.length;
      await until(() => receivedBy(ours) >= sent, `${sent} bytes received`);
    }
    return await within(reading, 'the messages');
  } finally {
    ours.destroy();
    raw.destroy();
  }
}

// Bytes the kernel has handed to our side so far.
function receivedBy(sock: net.Socket): number {
  return sock.bytesRead;
}

async function everySplit(t: ExecutionContext, role: Role): Promise<void> {
  const bytes = stream(role);
  t.deepEqual(await run(role, [bytes]), expected, 'one write');
  for (let cut = 1; cut < bytes.length; cut++) {
    const got = await run(role, [bytes.subarray(0, cut), bytes.subarray(cut)]);
    // One assertion per split point would flood the report; fail with the offset instead.
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.deepEqual(got, expected, `split at ${cut} of ${bytes.length}`);
      return;
    }
  }
  t.pass(`${bytes.length - 1} split points`);
}

for (const role of ['server', 'client'] as Role[]) {
  test(`${role}: a frame stream split into two writes at every offset reads the same`, (t) => everySplit(t, role));

  test(`${role}: a small stream written byte by byte reads the same`, async (t) => {
    const bytes = Buffer.concat([
      // 'é' is cut between the two fragments.
      frame(role, 0, Opcode.Text, Buffer.from([0x68, 0xc3]), false),
      frame(role, 1, Opcode.Ping, 'x'),
      frame(role, 2, Opcode.Cont, Buffer.from([0xa9, 0xe2, 0x82, 0xac])),
      frame(role, 3, Opcode.Close, closeData)
    ]);
    const parts = Array.from(bytes, (b) => Buffer.from([b]));
    const got = await run(role, parts);
    t.deepEqual(got, [
      { opcode: Opcode.Ping, data: Buffer.from('x') },
      { opcode: Opcode.Text, data: Buffer.from('hé€') },
      { opcode: Opcode.Close, data: closeData }
    ]);
  });

  test(`${role}: bytes passed as head are read first, a frame straddling head and socket included`, async (t) => {
    const f = (opcode: number, data: string, fin = true): Buffer =>
      makeFrame({ fin, rsv1: false, rsv2: false, rsv3: false, masked: role === 'server', opcode: opcode as Opcode, data: Buffer.from(data) }, PEER_KEY);
    const bytes = Buffer.concat([f(Opcode.Text, 'in head'), f(Opcode.Binary, 'straddling', false), f(Opcode.Cont, '!')]);
    const cut = f(Opcode.Text, 'in head').length + 5;
    const { ws, raw } = await rawPair(t, role, { head: bytes.subarray(0, cut) });
    t.deepEqual(await within(readData(ws), 'the head message'), { opcode: Opcode.Text, data: Buffer.from('in head') });
    const next = readData(ws);
    raw.write(bytes.subarray(cut));
    t.deepEqual(await within(next, 'the straddling message'), { opcode: Opcode.Binary, data: Buffer.from('straddling!') });
  });
}
