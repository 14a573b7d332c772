/**
 * Careless callers (issue 25, point 3): `sendBinary(ws, 'hello')` sent 5 zero bytes, and
 * `sendBinary(ws, 12345)` resolved and left the connection broken (the next `sendText`
 * reached the peer as garbage, `reserved opcode 0x6`). Every send function checks the type
 * of what it is given and throws a TypeError (a RangeError for a number out of its range)
 * before anything is written: for any wrong argument, the bytes that follow are exactly those
 * of the next good send.
 */
import test from 'ava';
import fc from 'fast-check';
import { AsyncSocket, makeFrame, Opcode, sendBinary, sendChain, sendClose, sendFragmented, sendFrame, sendPing, sendPong, sendText } from '../../src';
import { memorySocket } from '../helpers/memory-socket';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);

// What JavaScript callers pass by mistake: anything but the right type.
const notBytes = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 8 }),
  fc.object({ maxDepth: 1 }),
  fc.constant(new ArrayBuffer(4)),
  fc.constant(new DataView(new ArrayBuffer(4))),
  fc.constant(new Uint16Array([1, 2]))
);
const notString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 })
);
const notStringOrBytes = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }), fc.constant(new ArrayBuffer(2)));
const notBoolean = fc.oneof(fc.integer(), fc.string({ minLength: 1 }), fc.constant(null), fc.object({ maxDepth: 0 }));

type Call = (ws: AsyncSocket) => unknown;
const anyValue = <T>(x: T): never => x as unknown as never;

const badCalls: fc.Arbitrary<[string, Call]> = fc.oneof(
  notBytes.map((v): [string, Call] => ['sendBinary data', (ws) => sendBinary(ws, anyValue(v))]),
  notString.map((v): [string, Call] => ['sendText text', (ws) => sendText(ws, anyValue(v))]),
  notBytes.map((v): [string, Call] => ['sendFrame data', (ws) => sendFrame(ws, Opcode.Binary, anyValue(v))]),
  notStringOrBytes.map((v): [string, Call] => ['sendPong payload', (ws) => sendPong(ws, anyValue(v))]),
  notStringOrBytes.filter((v) => v !== undefined).map((v): [string, Call] => ['sendPing token', (ws) => sendPing(ws, undefined, anyValue(v))]),
  notStringOrBytes.map((v): [string, Call] => ['sendFragmented data', (ws) => sendFragmented(ws, Opcode.Binary, anyValue(v), 4)]),
  notStringOrBytes.map((v): [string, Call] => ['sendChain part', (ws) => sendChain(ws, Opcode.Binary, [anyValue(v)])]),
  notBoolean.map((v): [string, Call] => ['sendBinary masked', (ws) => sendBinary(ws, Buffer.from('x'), anyValue(v))]),
  notString.filter((v) => v !== undefined).map((v): [string, Call] => ['sendClose reason', (ws) => sendClose(ws, 1000, anyValue(v))]),
  fc.oneof(fc.string(), fc.boolean(), fc.constant(null)).map((v): [string, Call] => ['sendClose code', (ws) => sendClose(ws, anyValue(v))]),
  fc.oneof(fc.integer({ min: 16 }), fc.integer({ max: -1 }), fc.string()).map((v): [string, Call] => ['sendFrame opcode', (ws) => sendFrame(ws, anyValue(v), Buffer.alloc(1))]),
  fc.oneof(fc.constant(0), fc.constant(NaN), fc.string()).map((v): [string, Call] => ['sendFragmented size', (ws) => sendFragmented(ws, Opcode.Binary, 'ab', anyValue(v))])
);

test('property: a send with a wrong argument throws a TypeError or RangeError and writes nothing; the next send goes out intact', async (t) => {
  let checked = 0;
  await fc.assert(
    fc.asyncProperty(badCalls, fc.constantFrom<'client' | 'server'>('client', 'server'), async ([label, call], role) => {
      const mem = memorySocket();
      const ws = new AsyncSocket(mem.duplex, { role });
      let thrown: unknown = null;
      let result: unknown;
      try {
        result = call(ws);
      } catch (err) {
        thrown = err;
      }
      // A chain checks its parts as they come: the first part's error is its rejection.
      if (thrown === null && result instanceof Promise) thrown = await result.then(() => null, (e: unknown) => e);
      if (!(thrown instanceof TypeError || thrown instanceof RangeError)) throw new Error(`${label}: ${String(thrown)} instead of a TypeError`);
      await sendText(ws, 'marker', false);
      await new Promise((r) => setImmediate(r));
      const wrote = Buffer.concat(mem.written);
      const expected = makeFrame(Opcode.Text, 'marker', false);
      if (!wrote.equals(expected)) throw new Error(`${label}: the next frame was ${wrote.toString('hex')}, not ${expected.toString('hex')}`);
      ws.destroy();
      checked++;
    }),
    { numRuns: RUNS }
  );
  t.log(`${checked} wrong calls, each refused before a byte was written`);
  t.pass();
});

test('the reported cases: sendBinary with a string or a number, sendText with a Buffer', (t) => {
  const mem = memorySocket();
  const ws = new AsyncSocket(mem.duplex, { role: 'server' });
  t.throws(() => sendBinary(ws, anyValue('hello')), { instanceOf: TypeError, message: /sendBinary: data must be a Uint8Array or Buffer, not the string "hello" \(send text with sendText\)/ });
  t.throws(() => sendBinary(ws, anyValue(12345)), { instanceOf: TypeError, message: /not number 12345/ });
  t.throws(() => sendText(ws, anyValue(Buffer.from('x'))), { instanceOf: TypeError, message: /sendText: text must be a string, not a Buffer \(send bytes with sendBinary\)/ });
  t.is(mem.written.length, 0);
  ws.destroy();
});
