/**
 * UTF-8 fail-fast inside one frame: a text frame whose first TCP chunk already holds an
 * invalid byte fails the connection (1007) before the rest of the frame is sent, in both
 * roles, in readData and readFragment; and valid text split anywhere still arrives intact.
 */
import test from 'ava';
import { InvalidUtf8Error, IOError, makeFrame, Opcode, readData, readFragment, Role } from '../../src';
import { PEER_KEY, rawPair, within } from '../helpers/socket-pair';

for (const role of ['server', 'client'] as Role[]) {
  for (const read of [readData, readFragment]) {
    test(`${role}, ${read.name}: invalid UTF-8 in the first chunk of a frame fails before the frame is complete`, async (t) => {
      const { ws, raw, peer } = await rawPair(t, role, { closeTimeout: 500 });
      const payload = Buffer.concat([Buffer.from('valid start '), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.alloc(5000, 0x61)]);
      const frame = makeFrame(Opcode.Text, payload, role === 'server', PEER_KEY);
      const reading = read(ws);
      raw.write(frame.subarray(0, 30)); // header, the valid start and the invalid sequence
      const err = await within(t.throwsAsync(reading, { instanceOf: InvalidUtf8Error }), 'the failure');
      t.is(err?.closeCode, 1007);
      const [close] = await peer.waitFrames(1);
      t.is(close!.opcode, Opcode.Close);
      t.is(close!.data.readUInt16BE(0), 1007);
      await t.throwsAsync(readData(ws), { instanceOf: IOError });
    });
  }

  test(`${role}: valid text in one frame, arriving in many chunks, is read intact`, async (t) => {
    const { ws, raw } = await rawPair(t, role);
    const text = 'ünïcödé 🎉 '.repeat(500);
    const frame = makeFrame(Opcode.Text, text, role === 'server', PEER_KEY);
    const reading = readData(ws);
    for (let at = 0; at < frame.length; at += 997) {
      raw.write(frame.subarray(at, at + 997));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const m = await within(reading, 'the message');
    t.is(m.opcode, Opcode.Text);
    t.is(m.data.toString('utf8'), text);
  });
}
