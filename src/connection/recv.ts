/**
 * Receiving: `recvFrame` (one frame), `readData` (one whole message, Nim style),
 * `readFragment` (a message piece by piece) and `messages` (an async iterator).
 *
 * Every read goes through one path: the one-reader guard of the socket's receive queue, a
 * synchronous parse of what is buffered by the connection's frame reader
 * (`src/core/frame-reader.ts`), and, only when bytes are missing or a payload must be
 * inflated, one promise settled from the socket's 'data' event or zlib through shared
 * functions. Control frames are answered by `src/connection/control.ts` before they are returned.
 * @module
 */
import { AsyncSocket } from './async-socket';
import { CloseCode, Opcode } from '../core/constants';
import { IOError, ProtocolError } from '../core/errors';
import type { Frame } from '../core/frame';
import { Compressed, Fragment, Message, NEED_MORE, Parsed, ReadMode } from '../core/frame-reader';
import { concurrentRead } from '../core/receive-queue';
import { checkOptionalBoolean } from '../core/checks';
import { answerControl, readFailed } from './control';

export type { Message, Fragment } from '../core/frame-reader';

type Result = Frame | Message | Fragment | IteratorResult<Message, void>;

// What a draining read (close() reading until the peer's Close) resolves with when a reader
// of the caller's takes its place.
const DISPLACED: Message = { opcode: Opcode.Close, data: Buffer.alloc(0) };

// One parse step: the next result out of the buffered bytes, with control frames answered
// (except for raw frames, which recvFrame hands out unanswered).
function step(ws: AsyncSocket, mode: ReadMode, client: boolean): Parsed {
  const result = ws.reader.parse(ws.queue, mode, client, ws.maxFrameSize, ws.deflate !== null);
  // A compressed payload's opcode is a data opcode, so only control frames pass this test.
  if (result !== NEED_MORE && mode !== ReadMode.FRAME && result.opcode >= Opcode.Close) {
    answerControl(ws, result.opcode, result.data, client);
    // Said at once, not when close()'s drain resumes: a loop's read may come in between.
    if (mode === ReadMode.DRAIN && result.opcode === Opcode.Close) ws.reader.closeDrained = true;
  }
  return result;
}

function isCompressed(p: Exclude<Parsed, typeof NEED_MORE>): p is Compressed {
  return (p as Compressed).kind === 'inflate';
}

// A read, or with `it` the next step of a messages() iterator (then it resolves to an
// iterator result, reads past Pings and Pongs, and ends the iterator on the Close).
function read(ws: AsyncSocket, mode: ReadMode, client: boolean, it: MessageIterator | null = null): Promise<Result> {
  const reader = ws.reader;
  const owner = ws.queue.owner;
  if (owner !== null) {
    // close() reads only while nobody else does: a read of the caller's takes its place.
    if (owner === reader && reader.mode === ReadMode.DRAIN && mode !== ReadMode.DRAIN) return takeOver(ws, mode, client, it);
    return Promise.reject(concurrentRead());
  }
  const assembler = reader.assembler;
  if (mode !== ReadMode.FRAME && assembler.opcode !== 0 && assembler.streaming !== (mode === ReadMode.FRAGMENT)) {
    return Promise.reject(
      new TypeError('a message begun with readFragment must be finished with readFragment, and likewise readData')
    );
  }
  for (;;) {
    let result: Parsed;
    try {
      result = step(ws, mode, client);
    } catch (err) {
      const failed = readFailed(ws, err, client);
      if (it !== null) return iterationFailed(ws, it, failed);
      return Promise.reject(failed);
    }
    if (result === NEED_MORE) return readSlow(ws, mode, client, null, it);
    if (isCompressed(result)) return readSlow(ws, mode, client, result, it);
    if (it === null) return Promise.resolve(result);
    const answer = iterationResult(it, result as Message);
    if (answer !== null) return Promise.resolve(answer);
  }
}

// The slow path: one promise for the caller, settled from the socket's 'data' event or zlib
// through shared functions (no async frame, no closures per read), so an idle connection
// waiting in readData (or in a messages() loop) holds little more than that promise. The
// reader holds the guard.
function readSlow(ws: AsyncSocket, mode: ReadMode, client: boolean, compressed: Compressed | null, it: MessageIterator | null): Promise<Result> {
  return new Promise((resolve, reject) => {
    const reader = ws.reader;
    reader.mode = mode;
    reader.client = client;
    reader.resolve = resolve;
    reader.reject = reject;
    reader.iterator = it;
    ws.queue.owner = reader;
    if (compressed === null) waitForBytes(ws);
    else startInflate(ws, compressed);
  });
}

// A read of the caller's replaces close()'s draining read: the drain gives up, and the new
// read carries on from where it was (waiting for bytes, or for an inflation whose result,
// a whole message, it then gets).
function takeOver(ws: AsyncSocket, mode: ReadMode, client: boolean, it: MessageIterator | null): Promise<Result> {
  const reader = ws.reader;
  const queue = ws.queue;
  if (!queue.waiting && mode !== ReadMode.MESSAGE) return Promise.reject(concurrentRead());
  return new Promise((resolve, reject) => {
    const drain = reader.resolve!;
    reader.mode = mode;
    reader.client = client;
    reader.resolve = resolve;
    reader.reject = reject;
    reader.iterator = it;
    drain(DISPLACED);
    if (queue.waiting) {
      queue.cancelWait();
      onReadable(ws);
    }
  });
}

function waitForBytes(ws: AsyncSocket): void {
  const reader = ws.reader;
  ws.waitThen(reader.needed, reader.wakeAt, onReadable, onReadFailed);
}

// Inflates one frame's payload of a compressed message, then hands out the message or
// piece, or goes on reading. Text is checked as UTF-8 once inflated.
function startInflate(ws: AsyncSocket, frame: Compressed): void {
  const reader = ws.reader;
  const deflate = ws.deflate!;
  deflate.onEvicted ??= () => evicted(ws);
  const limit = reader.inflateLimit(reader.mode, ws.maxFrameSize, ws.maxMessageSize);
  deflate.inflate(frame.data, frame.opcode !== Opcode.Cont, frame.fin, limit, ws.maxInflateRatio).then(
    (out) => {
      if (reader.reject === null) return; // the read failed meanwhile (the socket closed)
      let result;
      try {
        result = reader.inflated(frame, out, reader.mode);
      } catch (err) {
        return onReadFailed(err, ws);
      }
      if (result === null) return onReadable(ws);
      deflate.handedOut(result.data);
      settle(ws, result);
    },
    (err: unknown) => onReadFailed(err, ws)
  );
}

/**
 * The process's budget of inflated bytes dropped the compressed message in progress (it
 * was waiting for its next frame while the budget was spent): the connection fails with
 * 1013 (try again later), through the pending read if there is one.
 */
function evicted(ws: AsyncSocket): void {
  const err = new ProtocolError(
    'WS_ERR_INFLATE_BUDGET',
    "the process's budget of inflated bytes is spent: an unfinished compressed message was dropped",
    CloseCode.TryAgainLater
  );
  if (ws.reader.reject !== null) {
    ws.queue.cancelWait();
    onReadFailed(err, ws);
  } else {
    readFailed(ws, err, ws.isClient);
  }
}

function onReadable(ws: AsyncSocket): void {
  const reader = ws.reader;
  let result: Parsed;
  try {
    result = step(ws, reader.mode, reader.client);
  } catch (err) {
    return onReadFailed(err, ws);
  }
  if (result === NEED_MORE) waitForBytes(ws);
  else if (isCompressed(result)) startInflate(ws, result);
  else settle(ws, result);
}

function settle(ws: AsyncSocket, result: Result): void {
  const reader = ws.reader;
  const resolve = reader.resolve!;
  const it = reader.iterator as MessageIterator | null;
  if (it === null) {
    release(ws);
    return resolve(result);
  }
  const answer = iterationResult(it, result as Message);
  if (answer === null) return onReadable(ws); // a Ping or Pong: read on, still holding the guard
  release(ws);
  resolve(answer);
}

function onReadFailed(err: unknown, ws: AsyncSocket): void {
  const reader = ws.reader;
  const reject = reader.reject;
  if (reject === null) return; // settled already
  const client = reader.client;
  const resolve = reader.resolve!;
  const it = reader.iterator as MessageIterator | null;
  release(ws);
  const failed = readFailed(ws, err, client);
  if (it === null) return reject(failed);
  it.end();
  if (closedByDrain(ws, failed)) resolve(DONE);
  else reject(failed);
}

// Gives up the guard; tells close() when it waits for this read to end.
function release(ws: AsyncSocket): void {
  const reader = ws.reader;
  reader.resolve = null;
  reader.reject = null;
  reader.iterator = null;
  ws.queue.owner = null;
  const settled = reader.onSettled;
  if (settled !== null) {
    reader.onSettled = null;
    settled();
  }
}

/**
 * @internal True when `err` only says that `close()` read the peer's Close (it reads while
 * the caller's loop is between two reads): the handshake completed, so a loop ends as if it
 * had read the Close itself.
 */
export function closedByDrain(ws: AsyncSocket, err: unknown): boolean {
  return err instanceof IOError && err.reason === 'closed' && ws.reader.closeDrained;
}

/**
 * @internal For `close()`: reads and drops messages until the peer's Close has been read,
 * by this or by the caller's own reader. While another read is pending it waits for that to
 * end; a read the caller starts meanwhile takes over from the drain. Resolves once nothing
 * more will be read (the Close came, the connection failed, or the socket closed).
 */
export async function drainUntilClose(ws: AsyncSocket): Promise<void> {
  const reader = ws.reader;
  const queue = ws.queue;
  while (queue.closed === null && ws.state.canRead) {
    if (queue.owner === reader) {
      // Someone reads: wait for that read to end (it ends when the socket closes, too).
      await new Promise<void>((resolve) => {
        const earlier = reader.onSettled; // another close() may wait on the same read
        reader.onSettled =
          earlier === null
            ? resolve
            : () => {
                earlier();
                resolve();
              };
      });
      continue;
    }
    if (queue.owner !== null) return; // an exact read holds the socket: the close timer bounds the rest
    let m: Message;
    try {
      m = (await read(ws, ReadMode.DRAIN, ws.isClient)) as Message;
    } catch {
      return; // the connection failed or the socket went away: that is the result
    }
    if (m !== DISPLACED && m.opcode === Opcode.Close) {
      reader.closeDrained = true;
      return;
    }
  }
}

/**
 * Nim's `isClientSocket`, checked against the socket's role: it decides how our Pongs and
 * Closes are masked and which end closes TCP first, so a value that contradicts the role
 * (`readData(serverSocket, true)`) is refused instead of quietly changing the connection.
 * @throws {TypeError} for a value that is not a boolean, or one that contradicts the role
 */
function clientSide(ws: AsyncSocket, isClientSocket: boolean | undefined, fn: string): boolean {
  if (isClientSocket === undefined || isClientSocket === ws.isClient) return ws.isClient;
  checkOptionalBoolean(isClientSocket, `${fn}() isClientSocket`);
  throw new TypeError(`${fn}(ws, ${isClientSocket}) on a ${ws.role} socket: isClientSocket must match the socket's role, or be left out`);
}

/**
 * Reads one frame, as Nim's `recvFrame`: the header is validated (RSV bits, opcode, control
 * frame rules, masking direction, length limits) before the payload is read, and the payload
 * comes back unmasked. Nothing is answered and fragments are not joined: this is the raw
 * layer under `readData`. Do not mix it with `readData` in the middle of a message.
 * @param isClientSocket true when this end is the client (frames must arrive unmasked);
 * defaults from the socket's role, and must match it (else a `TypeError`, synchronously)
 * @throws {ProtocolError} after failing the connection (a Close with its code was sent)
 * @throws {IOError} when the socket ends or breaks
 * @group Connection
 */
export function recvFrame(ws: AsyncSocket, isClientSocket?: boolean): Promise<Frame> {
  return read(ws, ReadMode.FRAME, clientSide(ws, isClientSocket, 'recvFrame')) as Promise<Frame>;
}

/**
 * Reads one whole message, as Nim's `readData`. Fragments are joined; Ping, Pong and Close
 * are returned too, already answered (a Pong with the Ping's payload; for a Close, the
 * close handshake: its code and reason are echoed and the connection is closed). Control frames between
 * fragments do not disturb the message: the next call carries on assembling it.
 *
 * Text messages are checked as UTF-8 fragment by fragment. After a Close, further reads
 * reject with `IOError`.
 *
 * Only one read may be pending per socket.
 * @example
 * ```ts
 * for (;;) {
 *   const { opcode, data } = await readData(ws);
 *   if (opcode === Opcode.Text) await sendText(ws, data.toString());
 *   else if (opcode === Opcode.Binary) await sendBinary(ws, data);
 *   else if (opcode === Opcode.Close) break;
 * }
 * ```
 * @param isClientSocket true when this end is the client; defaults from the socket's role,
 * and must match it (else a `TypeError`, synchronously)
 * @throws {ProtocolError} after failing the connection: `closeCode` 1002 (protocol), 1007
 * (invalid UTF-8), 1008 (too many fragments) or 1009 (too big) was sent and the socket ended
 * @throws {IOError} when the socket ends, breaks or times out, or the connection is closed
 * @throws {ConcurrencyError} when another read is pending
 * @group Connection
 */
export function readData(ws: AsyncSocket, isClientSocket?: boolean): Promise<Message> {
  return read(ws, ReadMode.MESSAGE, clientSide(ws, isClientSocket, 'readData')) as Promise<Message>;
}

/**
 * Reads the next piece of a message as it arrives, for messages too large to hold whole:
 * each data frame's payload is returned with the message's opcode and `fin` on its last
 * piece. Control frames are answered and returned as in `readData`; text is still checked
 * as UTF-8 across pieces. `maxFrameSize` still bounds each piece, but `maxMessageSize`
 * does not apply, since nothing is kept.
 * @example
 * ```ts
 * for (;;) {
 *   const part = await readFragment(ws);
 *   if (part.opcode === Opcode.Binary) file.write(part.data);
 *   if ((part.fin && part.opcode === Opcode.Binary) || part.opcode === Opcode.Close) break;
 * }
 * ```
 * @throws the same errors as {@link readData}
 * @group Connection
 */
export function readFragment(ws: AsyncSocket, isClientSocket?: boolean): Promise<Fragment> {
  return read(ws, ReadMode.FRAGMENT, clientSide(ws, isClientSocket, 'readFragment')) as Promise<Fragment>;
}

/**
 * The Text and Binary messages of a connection, as an async iterator. Pings are answered
 * and skipped; iteration ends cleanly after the close handshake, and errors are thrown as
 * in `readData`.
 * @example
 * ```ts
 * for await (const { opcode, data } of messages(ws)) console.log(opcode, data.length);
 * ```
 * @group Connection
 */
export function messages(ws: AsyncSocket, isClientSocket?: boolean): AsyncGenerator<Message, void, undefined> {
  return new MessageIterator(ws, clientSide(ws, isClientSocket, 'messages'));
}

const DONE: IteratorReturnResult<void> = Object.freeze({ done: true, value: undefined });

// What a message read for a messages() iterator answers: the message as an iterator result,
// the end on a Close, or null for a Ping or Pong (answered already; the read goes on).
function iterationResult(it: MessageIterator, m: Message): IteratorResult<Message, void> | null {
  if (m.opcode === Opcode.Text || m.opcode === Opcode.Binary) {
    it.answered();
    return { done: false, value: m };
  }
  if (m.opcode !== Opcode.Close) return null;
  it.end();
  return DONE;
}

// A failed read of a messages() iterator ends it; a Close that close() read while the loop
// was between two reads ends it cleanly.
function iterationFailed(ws: AsyncSocket, it: MessageIterator, err: unknown): Promise<Result> {
  it.end();
  return closedByDrain(ws, err) ? Promise.resolve(DONE) : Promise.reject(err);
}

/**
 * `messages()` as an object rather than an async generator: each `next()` is a read whose
 * promise resolves straight to the iterator result, so a loop idle in it holds what an idle
 * `readData` holds plus this small object (an async generator also kept its suspended
 * frame, a request record, await closures and a promise per step). It behaves as the
 * generator did: calls to `next()` made while one is pending run after it, and once it has
 * ended (Close, error, `return()` or `throw()`) every `next()` is done.
 */
class MessageIterator implements AsyncGenerator<Message, void, undefined> {
  private finished = false;
  // next() calls not answered yet, and the last one's promise, which a further call waits for.
  private pending = 0;
  private tail: Promise<IteratorResult<Message, void>> | null = null;

  constructor(
    private readonly ws: AsyncSocket,
    private readonly client: boolean
  ) {}

  next(): Promise<IteratorResult<Message, void>> {
    const p = ++this.pending === 1 ? this.pull() : this.tail!.then(() => this.pull(), () => this.pull());
    if (this.pending > 0) this.tail = p;
    return p;
  }

  return(value?: void | PromiseLike<void>): Promise<IteratorResult<Message, void>> {
    this.finished = true;
    return Promise.resolve(value).then((v) => ({ done: true, value: v }));
  }

  throw(err?: unknown): Promise<IteratorResult<Message, void>> {
    this.finished = true;
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** @internal One next() has its message. */
  answered(): void {
    // The last answer's promise is let go once nothing waits on it (it holds a message).
    if (--this.pending === 0) this.tail = null;
  }

  /** @internal The iteration is over (Close, error): this and every later next() are done. */
  end(): void {
    this.finished = true;
    this.answered();
  }

  private pull(): Promise<IteratorResult<Message, void>> {
    if (this.finished) {
      this.answered();
      return Promise.resolve(DONE);
    }
    return read(this.ws, ReadMode.MESSAGE, this.client, this) as Promise<IteratorResult<Message, void>>;
  }
}
