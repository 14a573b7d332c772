/**
 * DESIGN §3: control frames between the fragments of a message. `readData` returns each
 * one (a Ping already answered with a Pong carrying its payload), and the next call carries
 * on with the message, which comes out intact.
 */
import test, { ExecutionContext } from 'ava';
import { makeFrame, Opcode, readData, Role } from '../../src';
import { RawFrame, parseFrames, rawPair, within } from '../helpers/socket-pair';

/** Checks a Pong exactly as the given role must send it. */
function assertPong(t: ExecutionContext, f: RawFrame, role: Role, payload: Buffer): void {
  t.is(f.opcode, Opcode.Pong);
  t.true(f.fin);
  t.is(f.masked, role === 'client', 'a client masks its Pong, a server does not');
  t.deepEqual(f.data, payload);
  const expected = role === 'client' ? makeFrame(Opcode.Pong, payload, true, f.maskKey!) : makeFrame(Opcode.Pong, payload, false);
  t.deepEqual(f.wire, expected);
}

for (const role of ['server', 'client'] as Role[]) {
  test(`${role}: a ping inside a fragmented message is answered and returned; the message stays intact`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    const part1 = 'Hello, ';
    const part2 = 'wörld';
    raw.write(Buffer.concat([frame(Opcode.Text, part1, false), frame(Opcode.Ping, 'are you there?')]));
    const ping = await within(readData(ws), 'the ping');
    t.is(ping.opcode, Opcode.Ping);
    t.is(ping.data.toString(), 'are you there?');
    // The Pong goes out before the message is finished.
    const [pong] = await peer.waitFrames(1);
    assertPong(t, pong!, role, Buffer.from('are you there?'));

    // Only now does the rest of the message arrive: the partial message lived on the socket.
    raw.write(frame(Opcode.Cont, part2, true));
    const msg = await within(readData(ws), 'the message');
    t.is(msg.opcode, Opcode.Text);
    t.is(msg.data.toString(), part1 + part2);
    t.is(parseFrames(peer.bytes).length, 1, 'nothing but the Pong was sent');
  });

  test(`${role}: a pong inside a fragmented message is returned, not answered; the message stays intact`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    raw.write(
      Buffer.concat([
        frame(Opcode.Binary, Buffer.from([1, 2, 3]), false),
        frame(Opcode.Pong, 'heartbeat'),
        frame(Opcode.Cont, Buffer.from([4, 5]), true),
        frame(Opcode.Text, 'after')
      ])
    );
    const pong = await within(readData(ws), 'the pong');
    t.deepEqual(pong, { opcode: Opcode.Pong, data: Buffer.from('heartbeat') });
    const msg = await within(readData(ws), 'the message');
    t.deepEqual(msg, { opcode: Opcode.Binary, data: Buffer.from([1, 2, 3, 4, 5]) });
    const next = await within(readData(ws), 'the next message');
    t.deepEqual(next, { opcode: Opcode.Text, data: Buffer.from('after') });
    t.is(peer.bytes.length, 0, 'a Pong is never answered');
  });

  test(`${role}: several pings (empty, 125 bytes, binary) between fragments are each answered in order`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    const tokens = [Buffer.alloc(0), Buffer.alloc(125, 0x5a), Buffer.from([0, 0xff, 0x80, 0xc0]), Buffer.from('last')];
    const parts = ['one ', 'two ', 'three ', 'four'];
    const bytes: Buffer[] = [];
    parts.forEach((p, i) => {
      bytes.push(frame(i === 0 ? Opcode.Text : Opcode.Cont, p, i === parts.length - 1));
      if (i < tokens.length && i < parts.length - 1) bytes.push(frame(Opcode.Ping, tokens[i]!));
    });
    // Two pings back to back before the last fragment.
    bytes.splice(bytes.length - 1, 0, frame(Opcode.Ping, tokens[3]!));
    raw.write(Buffer.concat(bytes));

    for (let i = 0; i < tokens.length; i++) {
      const ping = await within(readData(ws), `ping ${i}`);
      t.is(ping.opcode, Opcode.Ping);
      t.deepEqual(ping.data, tokens[i]);
    }
    const msg = await within(readData(ws), 'the message');
    t.is(msg.opcode, Opcode.Text);
    t.is(msg.data.toString(), parts.join(''));

    const pongs = await peer.waitFrames(tokens.length);
    t.is(pongs.length, tokens.length);
    pongs.forEach((f, i) => assertPong(t, f, role, tokens[i]!));
  });

  test(`${role}: a ping between two whole messages and a ping arriving with the message in one chunk`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    raw.write(Buffer.concat([frame(Opcode.Text, 'a'), frame(Opcode.Ping, 'x'), frame(Opcode.Binary, 'b')]));
    t.deepEqual(await within(readData(ws), 'a'), { opcode: Opcode.Text, data: Buffer.from('a') });
    t.deepEqual(await within(readData(ws), 'ping'), { opcode: Opcode.Ping, data: Buffer.from('x') });
    t.deepEqual(await within(readData(ws), 'b'), { opcode: Opcode.Binary, data: Buffer.from('b') });
    const frames = await peer.waitFrames(1);
    t.is(frames.length, 1);
    assertPong(t, frames[0]!, role, Buffer.from('x'));
  });
}
