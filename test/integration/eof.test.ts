/**
 * A peer that goes away without a close handshake: EOF in the middle of a frame or between
 * frames, and a reset. `readData` rejects with `IOError` saying what happened, and so does
 * every read after.
 */
import test from 'ava';
import { IOError, Opcode, readData, Role, sendText } from '../../src';
import { rawPair, until, within } from '../helpers/socket-pair';

for (const role of ['server', 'client'] as Role[]) {
  test(`${role}: EOF in the middle of a payload rejects IOError 'eof' with bytesRead/expected`, async (t) => {
    const { raw, ws, frame } = await rawPair(t, role);
    const whole = frame(Opcode.Text, '0123456789');
    t.is(whole.length, role === 'server' ? 16 : 12);
    const reading = readData(ws);
    raw.end(whole.subarray(0, 8));
    const err = await within(t.throwsAsync(reading, { instanceOf: IOError }), 'readData to reject');
    t.is(err?.reason, 'eof');
    t.is(err?.bytesRead, 8);
    t.is(err?.expected, whole.length);
    const again = await t.throwsAsync(readData(ws), { instanceOf: IOError });
    t.not(again, undefined);
    await t.throwsAsync(sendText(ws, 'x'), { instanceOf: IOError });
  });

  test(`${role}: EOF in the middle of a header, and EOF arriving before the read starts`, async (t) => {
    const { raw, ws, ours, frame } = await rawPair(t, role);
    // A 16-bit length header cut after 3 bytes: 4 (+4 key) bytes of header are expected.
    const whole = frame(Opcode.Binary, Buffer.alloc(300));
    raw.end(whole.subarray(0, 3));
    await until(() => ours.readableEnded, 'our side to see the EOF');
    const err = await t.throwsAsync(readData(ws), { instanceOf: IOError });
    t.is(err?.reason, 'eof');
    t.is(err?.bytesRead, 3);
    t.is(err?.expected, role === 'server' ? 8 : 4);
  });

  test(`${role}: EOF between the fragments of a message, and after a whole message`, async (t) => {
    const { raw, ws, frame } = await rawPair(t, role);
    raw.write(Buffer.concat([frame(Opcode.Text, 'whole'), frame(Opcode.Text, 'part', false)]));
    t.deepEqual(await within(readData(ws), 'the whole message'), { opcode: Opcode.Text, data: Buffer.from('whole') });
    const reading = readData(ws);
    raw.end();
    const err = await within(t.throwsAsync(reading, { instanceOf: IOError }), 'readData to reject');
    t.is(err?.reason, 'eof');
    t.is(err?.bytesRead, 0);
    t.is(err?.expected, 2);
  });

  test(`${role}: a clean EOF without a Close frame rejects IOError 'eof'`, async (t) => {
    const { raw, ws } = await rawPair(t, role);
    const reading = readData(ws);
    raw.end();
    const err = await within(t.throwsAsync(reading, { instanceOf: IOError }), 'readData to reject');
    t.is(err?.reason, 'eof');
    t.is(err?.expected, 2);
  });

  test(`${role}: a peer reset (RST) while a read is pending rejects IOError`, async (t) => {
    const { raw, ws, ours, frame } = await rawPair(t, role);
    // resetAndDestroy() closes with SO_LINGER 0: the kernel sends RST.
    raw.write(frame(Opcode.Binary, Buffer.alloc(100)).subarray(0, 10));
    await until(() => ours.bytesRead >= 10, 'the partial frame');
    const reading = readData(ws);
    raw.resetAndDestroy();
    const err = await within(t.throwsAsync(reading, { instanceOf: IOError }), 'readData to reject');
    t.is(err?.reason, 'reset');
    await t.throwsAsync(readData(ws), { instanceOf: IOError });
    await within(
      until(() => ours.destroyed, 'our socket to be destroyed'),
      'destroy'
    );
    await t.throwsAsync(sendText(ws, 'x'), { instanceOf: IOError });
  });

  test(`${role}: a peer destroy while a read is pending rejects IOError`, async (t) => {
    const { raw, ws } = await rawPair(t, role);
    const reading = readData(ws);
    raw.destroy();
    const err = await within(t.throwsAsync(reading, { instanceOf: IOError }), 'readData to reject');
    // A plain destroy closes the fd with nothing unread: the kernel sends FIN, not RST.
    t.is(err?.reason, 'eof');
    await t.throwsAsync(readData(ws), { instanceOf: IOError });
  });
}
