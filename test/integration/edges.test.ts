/**
 * Edge cases of the socket layer under the frame layer: bytes handed over as `head`, bytes
 * after a Close, messages that still arrive while our Close awaits its echo, the read buffer
 * bound (pause and resume under a flood), and the idle timeout.
 */
import test from 'ava';
import { AsyncSocket, Role } from '../../src/async-socket';
import { Opcode } from '../../src/core/constants';
import { IOError } from '../../src/core/errors';
import { makeFrame } from '../../src/core/frame';
import { readData } from '../../src/recv';
import { sendBinary, sendClose } from '../../src/send';
import { PEER_KEY, pair, rawPair, socketPair, until, within } from '../helpers/socket-pair';

for (const role of ['server', 'client'] as Role[]) {
  test(`${role}: bytes passed as head are read first, a frame straddling head and socket included`, async (t) => {
    const [ours, raw] = await socketPair();
    t.teardown(() => {
      ours.destroy();
      raw.destroy();
    });
    const masked = role === 'server';
    const f = (opcode: number, data: string, fin = true): Buffer =>
      makeFrame({ fin, rsv1: false, rsv2: false, rsv3: false, masked, opcode: opcode as Opcode, data: Buffer.from(data) }, PEER_KEY);
    const bytes = Buffer.concat([f(Opcode.Text, 'in head'), f(Opcode.Binary, 'straddling', false), f(Opcode.Cont, '!')]);
    const cut = f(Opcode.Text, 'in head').length + 5;
    const ws = new AsyncSocket(ours, { role, head: bytes.subarray(0, cut) });
    t.deepEqual(await within(readData(ws), 'the head message'), { opcode: Opcode.Text, data: Buffer.from('in head') });
    const next = readData(ws);
    raw.write(bytes.subarray(cut));
    t.deepEqual(await within(next, 'the straddling message'), { opcode: Opcode.Binary, data: Buffer.from('straddling!') });
  });

  test(`${role}: bytes after the peer's Close are dropped, never returned`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    raw.write(Buffer.concat([frame(Opcode.Close, Buffer.from([0x03, 0xe8])), frame(Opcode.Text, 'after close'), frame(Opcode.Ping, 'x')]));
    t.is((await within(readData(ws), 'the Close')).opcode, Opcode.Close);
    await t.throwsAsync(readData(ws), { instanceOf: IOError });
    raw.end();
    await peer.waitClose();
    const frames = peer.bytes;
    // Only the Close echo: no Pong for the ping that followed the Close.
    t.is(frames[0]! & 0x0f, Opcode.Close);
    t.is(frames.length, role === 'client' ? 2 + 4 + 2 : 2 + 2);
  });

  test(`${role}: after our sendClose, messages the peer sent before its echo are still returned`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    await sendClose(ws, 1000);
    await peer.waitFrames(1);
    raw.write(Buffer.concat([frame(Opcode.Text, 'late but legal'), frame(Opcode.Ping, 'p'), frame(Opcode.Close, Buffer.from([0x03, 0xe8]))]));
    t.deepEqual(await within(readData(ws), 'the message'), { opcode: Opcode.Text, data: Buffer.from('late but legal') });
    t.deepEqual(await within(readData(ws), 'the ping'), { opcode: Opcode.Ping, data: Buffer.from('p') });
    t.deepEqual(await within(readData(ws), 'the echo'), { opcode: Opcode.Close, data: Buffer.from([0x03, 0xe8]) });
    if (role === 'client') raw.end();
    await peer.waitClose();
    t.is(peer.bytes.length, role === 'client' ? 8 : 4, 'only our Close: no Pong after our Close, no second Close');
  });
}

test('a flood with nobody reading pauses the socket (readBufferSize) and is read intact afterwards', async (t) => {
  const p = await pair(t, { server: { readBufferSize: 16 * 1024 } });
  const count = 200;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < count; i++) sends.push(sendBinary(p.client, Buffer.alloc(8 * 1024, i & 0xff)));
  // Nobody reads yet: the server stops pulling from the kernel once 16 KiB is buffered.
  await until(() => p.serverSocket.isPaused(), 'the server socket to pause');
  t.true(p.server.bufferedAmount <= 16 * 1024 + 8 * 1024 + 64 * 1024, `buffered ${p.server.bufferedAmount}`);
  for (let i = 0; i < count; i++) {
    const m = await within(readData(p.server), `message ${i}`);
    t.is(m.data.length, 8 * 1024);
    if (m.data[0] !== (i & 0xff) || m.data[m.data.length - 1] !== (i & 0xff)) {
      t.fail(`message ${i} corrupted or out of order`);
      return;
    }
  }
  await within(Promise.all(sends), 'all sends to resolve');
});

test('idleTimeout destroys a silent connection; the pending read rejects IOError timeout', async (t) => {
  const p = await pair(t, { server: { idleTimeout: 100 } });
  const err = await within(t.throwsAsync(readData(p.server), { instanceOf: IOError }), 'the timeout');
  t.is(err?.reason, 'timeout');
  t.true(p.server.destroyed);
  await t.throwsAsync(readData(p.client), { instanceOf: IOError });
});
