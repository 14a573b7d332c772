/**
 * permessage-deflate (RFC 7692) for one connection: `node:zlib` raw deflate streams, made
 * only when a compressed message is first sent or received, freed after each message when
 * the peer or we agreed to no context takeover (so an idle connection holds no zlib memory),
 * and freed when the socket closes.
 *
 * Memory stays bounded: inflated output is counted as it comes out of zlib and inflation
 * stops once a message passes its limit (a small message that would inflate to gigabytes
 * costs at most the limit plus one zlib chunk); what inflates past ten bytes per byte
 * received draws on an allowance for the whole process (`src/compression/zlib-jobs.ts`); and at most
 * {@link DEFLATE_CONCURRENCY} zlib jobs run at once in the process (zlib works on the libuv
 * thread pool, and a flood of jobs from many connections would otherwise queue without
 * bound there).
 * @module
 */
import * as zlib from 'node:zlib';
import { DeflateNegotiation, DeflateParams, NEGOTIATION_RULES } from '../core/extensions';
import { type Rule, bytesRule, countRule, mergeRules } from '../core/options';
import { CloseCode } from '../core/constants';
import { IOError, PayloadTooBigError, ProtocolError } from '../core/errors';
import { InflateAccount, compressJob, inflateJob } from './zlib-jobs';

export { AMPLIFICATION_RATIO, AMPLIFIED_BUDGET, DEFLATE_CONCURRENCY, INFLATE_BUDGET } from './zlib-jobs';

/**
 * How messages are compressed once permessage-deflate is agreed.
 * @group Compression
 */
export interface CompressionOptions {
  /** Messages smaller than this many bytes are sent uncompressed. Default 1024. */
  threshold?: number;
  /** zlib compression level, 0–9. Default 6 (zlib's default). */
  level?: number;
  /**
   * zlib memory level, 1–9: the compressor's hash table costs 2^(memLevel+9) bytes. Default 8.
   */
  memLevel?: number;
}

/**
 * The `perMessageDeflate` option of `connect`, `upgrade` and `listen`.
 * @group Compression
 */
export interface DeflateOptions extends DeflateNegotiation, CompressionOptions {}

/**
 * What an `AsyncSocket` needs to compress: the agreed parameters and the tuning.
 * @group Compression
 */
export type DeflateSettings = DeflateParams & CompressionOptions;

/** @internal The rules of the `perMessageDeflate` option (`checkOptions`), `true` and `false` included. */
export const DEFLATE_RULE: Rule = {
  kind: 'nested',
  orBoolean: true,
  rules: mergeRules(NEGOTIATION_RULES, {
    options: { threshold: bytesRule(0, 'smaller messages are sent as they are'), level: countRule(-1, 9), memLevel: countRule(1, 9) }
  })
};

// Default of CompressionOptions.threshold.
const DEFAULT_THRESHOLD = 1024;

// The empty stored block a sync flush ends with (§7.2.1 removes it, §7.2.2 appends it).
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const EMPTY = Buffer.alloc(0);
// Last payloads up to this size are copied to join the tail in one write.
const JOIN_TAIL_MAX = 64 * 1024;
// New deflate streams a frame may begin after a block marked final (BFINAL, §7.2.1): one, and
// one more per RESTART_BYTES of its payload. A new stream costs a zlib stream of its own
// (about 40 µs of CPU here) and one more thread-pool trip (about 25 µs), where an ordinary
// frame costs one trip: frames packed with 2-byte empty streams cost 17.4 s of CPU per
// 760 KB at 16 per frame, and without a bound tied to the bytes received, the CPU a peer
// can make us spend per byte has none either. A sender that ends its stream with BFINAL
// (§7.2.3.4) begins one new stream per frame or message, which this allows.
const RESTART_BYTES = 1024;
// What any compressed message may inflate to, whatever its ratio, when maxInflateRatio is on
// (it counts past this).
const RATIO_FREE = 1024 * 1024;

const ignore = (): void => {};

// Frees a zlib stream we no longer use: its late events reach nobody, and an error it may
// still emit (closing with work in flight) is swallowed rather than crashing the process.
function retire(stream: zlib.InflateRaw | zlib.DeflateRaw): void {
  stream.removeAllListeners('data');
  stream.removeAllListeners('end');
  stream.removeAllListeners('error');
  stream.on('error', ignore);
  stream.close();
}

interface Job {
  chunks: Buffer[];
  size: number;
  limit: number;
  resolve: (out: Buffer) => void;
  reject: (err: Error) => void;
}

function joined(job: Job): Buffer {
  return job.chunks.length === 1 ? job.chunks[0]! : Buffer.concat(job.chunks, job.size);
}

// zlib streams find their PerMessageDeflate here, so the listeners are shared functions.
const kOwner = Symbol('wsframe.PerMessageDeflate');
type Owned<T> = T & { [kOwner]: PerMessageDeflate };

function onInflateData(this: Owned<zlib.InflateRaw>, chunk: Buffer): void {
  this[kOwner].inflated(chunk);
}
function onInflateError(this: Owned<zlib.InflateRaw>, err: Error): void {
  this[kOwner].inflateFailed(err);
}
function onInflateEnd(this: Owned<zlib.InflateRaw>): void {
  this[kOwner].inflateEnded();
}
function onDeflateData(this: Owned<zlib.DeflateRaw>, chunk: Buffer): void {
  this[kOwner].deflated(chunk);
}
function onDeflateError(this: Owned<zlib.DeflateRaw>, err: Error): void {
  this[kOwner].deflateFailed(err);
}

/**
 * The compression state of one connection. `AsyncSocket` owns one when permessage-deflate
 * was agreed; `readData` inflates through it and the send functions deflate through it.
 * @group Compression
 */
export class PerMessageDeflate {
  /** The parameters in force. */
  readonly params: DeflateParams;
  /** Messages below this size go out uncompressed. */
  readonly threshold: number;
  private readonly level: number;
  private readonly memLevel: number;
  private readonly isClient: boolean;
  private inflater: Owned<zlib.InflateRaw> | null = null;
  // The payload being inflated, whether it ends the message, and the inflater's input count
  // before it (to find what zlib left unconsumed when a stream ends).
  private inflateInput: Buffer = EMPTY;
  private inflateFin = false;
  private inflateStart = 0;
  // New streams the frame being inflated may still begin after a BFINAL block.
  private restartsLeft = 0;
  // True when the last stream ended at a BFINAL block: the next frame begins a new one.
  private endedAtFinal = false;
  private deflater: Owned<zlib.DeflateRaw> | null = null;
  private inflateJob: Job | null = null;
  private deflateJob: Job | null = null;
  private closed: IOError | null = null;
  private sendClosed: IOError | null = null;
  // Compressed bytes of the message being inflated so far, and what they inflated to.
  private messageBytes = 0;
  private messageOut = 0;
  // The most the message may inflate to with what was received of it (maxInflateRatio).
  private ratioCap = Infinity;
  private ratio = 0;
  // What the message in progress holds of the process's budget (made on the first inflation).
  private account: InflateAccount | null = null;
  /**
   * @internal Called when the process's budget drops the message in progress (while its
   * next frame has not come): the reader fails the connection with 1013.
   */
  onEvicted: (() => void) | null = null;

  constructor(settings: DeflateSettings, isClient: boolean) {
    this.params = {
      serverNoContextTakeover: settings.serverNoContextTakeover,
      clientNoContextTakeover: settings.clientNoContextTakeover,
      serverMaxWindowBits: settings.serverMaxWindowBits,
      clientMaxWindowBits: settings.clientMaxWindowBits
    };
    this.threshold = settings.threshold ?? DEFAULT_THRESHOLD;
    this.level = settings.level ?? zlib.constants.Z_DEFAULT_COMPRESSION;
    this.memLevel = settings.memLevel ?? 8;
    this.isClient = isClient;
  }

  // Our context and window are the client's parameters when we are the client.
  private get ownNoTakeover(): boolean {
    return this.isClient ? this.params.clientNoContextTakeover : this.params.serverNoContextTakeover;
  }
  private get peerNoTakeover(): boolean {
    return this.isClient ? this.params.serverNoContextTakeover : this.params.clientNoContextTakeover;
  }

  /** @internal How many zlib streams this connection holds now, 0–2 (for tests). */
  get zlibStreams(): number {
    return (this.inflater === null ? 0 : 1) + (this.deflater === null ? 0 : 1);
  }

  /**
   * Inflates the payload of one frame of a compressed message (the tail of §7.2.2 is added
   * after the last one).
   * @param first true for the message's first frame
   * @param limit most bytes this frame may inflate to
   * @param ratio most bytes the message may inflate to per compressed byte, past its first
   * MiB (0: no bound; maxInflateRatio)
   * @throws {PayloadTooBigError} 1009 once the output passes `limit` (inflation stops there)
   * @throws {ProtocolError} 1009 once the message's output passes `ratio` times its input
   * @throws {ProtocolError} 1013 when the process's allowance of amplified bytes has no room
   * for what the message amplifies
   * @throws {ProtocolError} 1007 for data that is not valid deflate
   * @throws {IOError} once the connection is closed
   */
  inflate(data: Buffer, first: boolean, fin: boolean, limit: number, ratio = 0): Promise<Buffer> {
    const account = (this.account ??= new InflateAccount(() => this.onEvicted?.()));
    // Frames of one connection inflate one after the other, so the message's counts can be
    // kept from here.
    if (first) {
      this.messageBytes = 0;
      this.messageOut = 0;
    }
    this.messageBytes += data.length;
    account.received(data.length);
    this.ratio = ratio;
    this.ratioCap = ratio > 0 ? Math.max(RATIO_FREE, ratio * this.messageBytes) : Infinity;
    // What the budget reserves while it runs: the most this frame may inflate to before it is
    // amplified (what it inflates past that, the process's allowance counts as it comes).
    const need = Math.max(0, Math.min(limit, this.ratioCap - this.messageOut, account.room));
    return inflateJob(
      account,
      need,
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.closed !== null) return reject(this.closed);
          if (fin && this.messageBytes === 0) {
            // An empty payload plus the tail of §7.2.2 is not DEFLATE data (even an empty
            // message is at least one block: the single 0x00 of §7.2.3.6). Fed to zlib it
            // would return nothing and leave the stream inside a stored-block header, so the
            // next message would fail or, worse, come out as that header's raw bytes.
            return reject(new ProtocolError('WS_ERR_INVALID_COMPRESSED_DATA', 'a compressed message with no data', 1007));
          }
          // No stream yet (or the last one ended at a BFINAL block) and nothing to start one
          // with: the tail alone would leave a new stream inside a stored-block header.
          if (this.inflater === null && data.length === 0) return resolve(EMPTY);
          this.restartsLeft = 1 + Math.floor(data.length / RESTART_BYTES);
          // A stream that ended at BFINAL in an earlier frame: this frame begins a new one.
          if (this.inflater === null && this.endedAtFinal && !this.spendRestart(reject)) return;
          this.endedAtFinal = false;
          const inf = this.inflater ?? this.makeInflater();
          this.inflateJob = { chunks: [], size: 0, limit, resolve, reject };
          this.feed(inf, data, fin);
        })
    );
  }

  // Writes one frame's payload (and the tail of §7.2.2 after the last one). The stream flushes
  // on every write (Z_SYNC_FLUSH), so one write is one trip to the thread pool; a small last
  // payload is joined with the tail to save the second trip.
  private feed(inf: Owned<zlib.InflateRaw>, data: Buffer, fin: boolean): void {
    this.inflateInput = data;
    this.inflateFin = fin;
    this.inflateStart = inf.bytesWritten;
    const done = (err?: Error | null): void => {
      if (!err) this.inflateFlushed(inf, fin);
    };
    if (!fin) {
      inf.write(data, done);
    } else if (data.length <= JOIN_TAIL_MAX) {
      inf.write(Buffer.concat([data, TAIL], data.length + 4), done);
    } else {
      inf.write(data);
      inf.write(TAIL, done);
    }
  }

  private makeInflater(): Owned<zlib.InflateRaw> {
    const windowBits = this.isClient ? this.params.serverMaxWindowBits : this.params.clientMaxWindowBits;
    const inf = zlib.createInflateRaw({ windowBits, flush: zlib.constants.Z_SYNC_FLUSH }) as Owned<zlib.InflateRaw>;
    inf[kOwner] = this;
    inf.on('data', onInflateData);
    inf.on('error', onInflateError);
    inf.on('end', onInflateEnd);
    this.inflater = inf;
    return inf;
  }

  // Takes the inflate job in progress to settle it, and lets go of its payload (a view of the
  // receive buffer, which it would otherwise pin).
  private takeInflateJob(): Job | null {
    const job = this.inflateJob;
    this.inflateJob = null;
    this.inflateInput = EMPTY;
    return job;
  }

  private dropInflater(): void {
    const inf = this.inflater;
    this.inflater = null;
    if (inf !== null) retire(inf);
  }

  /**
   * The inflated bytes of the message in progress (a whole message, or a piece for
   * readFragment) were handed out as `data`: the process's budget gets them back, and the
   * allowance of amplified bytes counts what `data` amplified for as long as it lives.
   * Without `data` (nobody was handed them, or they are dropped) nothing stays counted.
   */
  handedOut(data?: Buffer): void {
    this.account?.handOut(data);
  }

  /** @internal */
  inflated(chunk: Buffer): void {
    const job = this.inflateJob;
    if (job === null) return;
    job.size += chunk.length;
    this.messageOut += chunk.length;
    const tooMuch =
      job.size > job.limit
        ? new PayloadTooBigError('WS_ERR_MESSAGE_TOO_BIG', job.size, job.limit)
        : this.messageOut > this.ratioCap
          ? new ProtocolError(
              'WS_ERR_INFLATE_RATIO',
              `a compressed message of ${this.messageBytes} bytes inflated past ${this.ratioCap} bytes (maxInflateRatio ${this.ratio})`,
              CloseCode.MessageTooBig
            )
          : null;
    const refused =
      tooMuch ??
      (this.account!.charge(chunk.length)
        ? null
        : new ProtocolError(
            'WS_ERR_AMPLIFIED_BUDGET',
            `the process's allowance of amplified bytes is spent (a message of ${this.messageBytes} compressed bytes inflated to more than ${this.messageOut - chunk.length}): try again later`,
            CloseCode.TryAgainLater
          ));
    if (refused !== null) {
      // Stop at once: the rest of the input is never inflated.
      this.takeInflateJob();
      this.dropInflater();
      this.failInflate(job.reject, refused);
      return;
    }
    job.chunks.push(chunk);
  }

  // The message is dropped: what it held goes back to the budget.
  private failInflate(reject: (err: Error) => void, err: Error): void {
    this.account?.release();
    reject(err);
  }

  /** @internal */
  inflateFailed(err: Error): void {
    const job = this.takeInflateJob();
    this.inflater = null;
    if (job !== null) {
      this.failInflate(job.reject, new ProtocolError('WS_ERR_INVALID_COMPRESSED_DATA', `invalid compressed data: ${err.message}`, 1007));
    }
  }

  /**
   * @internal The peer's deflate stream ended at a block with BFINAL set (§7.2.3.4): zlib takes
   * no more input on it, so what follows starts a new stream.
   */
  inflateEnded(): void {
    const ended = this.inflater;
    if (ended === null) return;
    const consumed = ended.bytesWritten - this.inflateStart;
    this.dropInflater();
    const job = this.inflateJob;
    if (job === null) return;
    const rest = this.inflateInput.subarray(consumed);
    if (rest.length === 0) {
      this.endedAtFinal = true;
      this.takeInflateJob();
      job.resolve(joined(job));
      return;
    }
    if (!this.spendRestart(job.reject)) {
      this.takeInflateJob();
      return;
    }
    // §7.2.1: "The next DEFLATE block follows the padded data": the rest of the payload is more
    // blocks of this message (from a sender that ended its stream and began another), not
    // something to drop. (zlib had left it unconsumed.)
    this.feed(this.makeInflater(), rest, this.inflateFin);
  }

  // Takes one new stream from the frame's allowance; rejects with 1008 when none is left.
  private spendRestart(reject: (err: Error) => void): boolean {
    if (this.restartsLeft-- > 0) return true;
    this.failInflate(
      reject,
      new ProtocolError(
        'WS_ERR_INVALID_COMPRESSED_DATA',
        `too many deflate streams in one frame (one, and one more per ${RESTART_BYTES} bytes)`,
        CloseCode.PolicyViolation
      )
    );
    return false;
  }

  private inflateFlushed(inf: zlib.InflateRaw, fin: boolean): void {
    const job = this.inflateJob;
    if (job === null || inf !== this.inflater) return;
    this.takeInflateJob();
    // Without context takeover nothing carries over to the next message: free the context
    // (an idle connection then holds no zlib memory) rather than keep it reset.
    if (fin && this.peerNoTakeover) this.dropInflater();
    job.resolve(job.chunks.length === 0 ? EMPTY : joined(job));
  }

  /**
   * Compresses one whole message (§7.2.1): a sync flush, without its 4-byte tail.
   * @throws {IOError} once the connection is closed
   */
  deflate(data: Uint8Array): Promise<Buffer> {
    return compressJob(
      data.length,
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.sendClosed !== null) return reject(this.sendClosed);
          // An empty message is one empty stored block, 0x00 once its tail is removed
          // (§7.2.3.6); zlib would write nothing for it right after a flush.
          if (data.length === 0) return resolve(Buffer.from([0x00]));
          const def = this.deflater ?? this.makeDeflater();
          this.deflateJob = { chunks: [], size: 0, limit: Infinity, resolve, reject };
          // The stream flushes on every write (Z_SYNC_FLUSH): one write, one thread-pool trip.
          def.write(data, (err?: Error | null) => {
            if (!err) this.deflateFlushed(def);
          });
        })
    );
  }

  private makeDeflater(): Owned<zlib.DeflateRaw> {
    const windowBits = this.isClient ? this.params.clientMaxWindowBits : this.params.serverMaxWindowBits;
    const def = zlib.createDeflateRaw({
      windowBits,
      level: this.level,
      memLevel: this.memLevel,
      flush: zlib.constants.Z_SYNC_FLUSH
    }) as Owned<zlib.DeflateRaw>;
    def[kOwner] = this;
    def.on('data', onDeflateData);
    def.on('error', onDeflateError);
    this.deflater = def;
    return def;
  }

  /** @internal */
  deflated(chunk: Buffer): void {
    const job = this.deflateJob;
    if (job === null) return;
    job.chunks.push(chunk);
    job.size += chunk.length;
  }

  /** @internal */
  deflateFailed(err: Error): void {
    const job = this.deflateJob;
    this.deflateJob = null;
    this.deflater = null;
    job?.reject(err);
  }

  private deflateFlushed(def: zlib.DeflateRaw): void {
    const job = this.deflateJob;
    if (job === null || def !== this.deflater) return;
    this.deflateJob = null;
    if (this.ownNoTakeover) {
      this.deflater = null;
      retire(def);
    }
    const out = joined(job);
    // A sync flush always ends with the empty stored block; anything else is a zlib bug.
    if (out.length < 4 || !out.subarray(out.length - 4).equals(TAIL)) {
      job.reject(new Error('zlib sync flush did not end with 00 00 ff ff'));
      return;
    }
    job.resolve(out.subarray(0, out.length - 4));
  }

  /**
   * Frees the compressor: nothing more can be sent. Pending and later compression rejects
   * with `err`; inflation goes on, for frames that arrived before the socket closed.
   */
  closeSending(err: IOError): void {
    if (this.sendClosed !== null) return;
    this.sendClosed = err;
    const deflating = this.deflateJob;
    this.deflateJob = null;
    const def = this.deflater;
    this.deflater = null;
    if (def !== null) retire(def);
    deflating?.reject(err);
  }

  /**
   * Frees the decompressor: nothing more will be read. Pending and later inflation rejects
   * with `err`; compression goes on, for messages queued before our Close (§5.5.1 of RFC 6455
   * lets the current message finish after the peer's Close).
   */
  closeReceiving(err: IOError): void {
    if (this.closed !== null) return;
    this.closed = err;
    const inflating = this.takeInflateJob();
    this.dropInflater();
    this.account?.dispose();
    inflating?.reject(err);
  }

  /** Frees both zlib contexts; pending and later work rejects with `err`. */
  close(err: IOError = new IOError('closed', 'the WebSocket connection is closed')): void {
    this.closeSending(err);
    this.closeReceiving(err);
  }
}
