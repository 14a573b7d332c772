/**
 * Runs one case over a raw TCP socket whose HTTP upgrade is done, in either role, and
 * judges what came back. The suite behaves as a correct endpoint around the bytes a case
 * sends: it answers pings, answers the peer's Close, and closes TCP first when it is the
 * server (RFC 6455 §7.1.1).
 *
 * The transport is any Duplex that carries the frame bytes: a TCP socket, or the stream of
 * a WebSocket over HTTP/2 (RFC 8441; see http2.ts), where "TCP" below reads as the stream:
 * its end (FIN) is END_STREAM, and a reset (RST) is RST_STREAM.
 */
import { isUtf8 } from 'node:buffer';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { DeflateCodec } from './compression';
import { encodeFrame, FrameParser, WireFrame, closePayload, isSendableCloseCode } from './wire';
import { FAIL_FAST_MS, pingAfterFrame } from './cases/build';
import { Case, CaseResult, Chop, CompressedSpec, Expected, OP, Step, Verdict, sectionOf } from './types';

/** Which side of the connection the suite plays. */
export type SuiteRole = 'client' | 'server';

/**
 * How long the peer may stay silent while the suite waits for it (ms), unless the case says.
 * A bound on silence, not on the case: a slow or busy machine stretches a case, but a peer
 * that makes progress is never cut off, so no verdict depends on how fast the machine is.
 */
const DEFAULT_TIMEOUT = 5000;

interface Received {
  op: 'text' | 'binary' | 'ping' | 'pong';
  data: Buffer;
  /** Sent with RSV1 (permessage-deflate) and inflated by the suite. */
  compressed: boolean;
}

/** A transport other than TCP: its name in the verdicts, and how the suite drops it. */
export interface TransportOptions {
  /** Default "TCP". */
  name?: string;
  /**
   * Drops the connection (a peer that broke the protocol, or went silent). Default
   * `destroy()`, which resets a TCP socket; over HTTP/2, RST_STREAM with CANCEL (RFC 8441 §5).
   */
  abort?: () => void;
}

/** One WebSocket connection seen from the suite's side, at the level of bytes. */
export class Conn {
  readonly messages: Received[] = [];
  readonly violations: string[] = [];
  /** The peer's Close: code (null when none) and reason; undefined until one arrives. */
  peerClose: { code: number | null; reason: Buffer; at: number } | undefined;
  closeSent = false;
  /** The peer ended its side ('end'): a TCP FIN; over HTTP/2, END_STREAM from the peer. */
  tcpEnded = false;
  /**
   * The transport closed ('close'): TCP closed both ways or was reset; over HTTP/2, the
   * stream closed (END_STREAM both ways, or RST_STREAM from either side).
   */
  tcpClosed = false;
  writeError: Error | undefined;
  /** When the peer was last heard from (bytes, FIN or close), by Date.now(). */
  private lastHeard = Date.now();
  private readonly parser = new FrameParser();
  private fragments: Buffer[] | null = null;
  private fragmentOp = 0;
  private fragmentCompressed = false;
  private inflateFailed = false;
  private waiters: Array<() => void> = [];

  /** What the verdicts call the transport ("TCP", or "the HTTP/2 stream"). */
  readonly transport: string;
  /** Drops the connection (see {@link TransportOptions.abort}). */
  readonly abort: () => void;

  /**
   * `socket`: the transport, a TCP socket or an HTTP/2 stream. `codec`: the connection's
   * permessage-deflate, when the handshake agreed on it.
   */
  constructor(
    readonly socket: Duplex,
    readonly role: SuiteRole,
    head: Buffer,
    readonly codec: DeflateCodec | null = null,
    options: TransportOptions = {}
  ) {
    this.transport = options.name ?? 'TCP';
    this.abort = options.abort ?? (() => void socket.destroy());
    if (socket instanceof net.Socket) socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.writeError ??= err;
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.tcpEnded = true;
      this.lastHeard = Date.now();
      this.wake();
    });
    socket.on('close', () => {
      this.tcpClosed = true;
      this.lastHeard = Date.now();
      this.wake();
    });
    if (head.length > 0) this.onData(head);
    socket.resume();
  }

  /** True once the peer has started to close or fail the connection. */
  get peerGone(): boolean {
    return this.peerClose !== undefined || this.tcpEnded || this.tcpClosed;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Waits until `cond` holds (checked on every event from the peer); says whether it held.
   * Gives up only once the peer has been silent for `quietMs`, counted from the later of the
   * call and the last event: a peer that is slow but keeps sending is waited for. When the
   * timer fires, input that arrived meanwhile is read first (a starved process runs its
   * timers before its I/O), so time the process itself lost is not counted as silence.
   */
  waitFor(cond: () => boolean, quietMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    const since = Date.now();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (held: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(held);
      };
      const check = (): void => {
        if (cond()) finish(true);
        else if (!done) this.waiters.push(check);
      };
      const arm = (ms: number): void => {
        timer = setTimeout(() => setImmediate(expire), ms);
      };
      const expire = (): void => {
        if (done) return;
        if (cond()) return finish(true);
        const quiet = Date.now() - Math.max(since, this.lastHeard);
        if (quiet >= quietMs) finish(false);
        else arm(quietMs - quiet);
      };
      this.waiters.push(check);
      arm(quietMs);
    });
  }

  private onData(chunk: Buffer): void {
    this.lastHeard = Date.now();
    this.parser.push(chunk);
    try {
      for (let f = this.parser.next(); f !== null; f = this.parser.next()) this.onFrame(f);
    } catch (err) {
      this.violations.push((err as Error).message);
      this.abort();
    }
    this.wake();
  }

  private onFrame(f: WireFrame): void {
    if (this.peerClose !== undefined) {
      this.violations.push(`frame (opcode ${f.opcode}) after the peer's Close`);
      return;
    }
    const expectMasked = this.role === 'server';
    if (f.masked !== expectMasked) this.violations.push(`${f.masked ? 'masked' : 'unmasked'} frame from the ${this.role === 'server' ? 'client' : 'server'}`);
    // RFC 7692 §6: permessage-deflate gives RSV1 a meaning on the first frame of a data
    // message; every other RSV bit, and RSV1 anywhere else, still fails (RFC 6455 §5.2).
    const rsv1 = this.codec !== null && (f.rsv & 4) !== 0;
    const rsv = this.codec !== null ? f.rsv & 3 : f.rsv;
    if (rsv !== 0) this.violations.push(`RSV bits ${rsv} set by the peer`);
    if (rsv1 && (f.opcode === OP.cont || f.opcode >= 8)) {
      this.violations.push(`RSV1 on a ${f.opcode === OP.cont ? 'continuation' : 'control'} frame from the peer (RFC 7692 §6.1)`);
    }
    if (f.opcode >= 8) {
      if (!f.fin) this.violations.push('fragmented control frame from the peer');
      if (f.data.length > 125) this.violations.push(`control frame of ${f.data.length} bytes from the peer`);
      if (f.opcode === OP.ping) {
        this.messages.push({ op: 'ping', data: f.data, compressed: false });
        if (!this.closeSent) this.write(encodeFrame({ op: OP.pong, data: f.data }, this.role === 'client'));
      } else if (f.opcode === OP.pong) {
        this.messages.push({ op: 'pong', data: f.data, compressed: false });
      } else if (f.opcode === OP.close) {
        this.onClose(f.data);
      } else this.violations.push(`reserved control opcode ${f.opcode} from the peer`);
      return;
    }
    if (f.opcode === OP.cont) {
      if (this.fragments === null) {
        this.violations.push('continuation frame with nothing to continue from the peer');
        return;
      }
      this.fragments.push(f.data);
    } else if (f.opcode === OP.text || f.opcode === OP.binary) {
      if (this.fragments !== null) this.violations.push('new data frame inside a fragmented message from the peer');
      this.fragments = [f.data];
      this.fragmentOp = f.opcode;
      this.fragmentCompressed = rsv1;
    } else {
      this.violations.push(`reserved data opcode ${f.opcode} from the peer`);
      return;
    }
    if (!f.fin) return;
    let data = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
    this.fragments = null;
    if (this.fragmentCompressed) {
      try {
        data = this.codec!.inflate(data);
      } catch (err) {
        // Once the contexts differ every later message fails too: the first one says it all.
        if (!this.inflateFailed) this.violations.push(`compressed message #${this.messages.length + 1} from the peer does not inflate: ${(err as Error).message}`);
        this.inflateFailed = true;
      }
    }
    // Invalid UTF-8 from the peer shows as a mismatch or an unexpected message: the echo
    // of an invalid text message is itself the failure, so it is not counted twice here.
    this.messages.push({ op: this.fragmentOp === OP.text ? 'text' : 'binary', data, compressed: this.fragmentCompressed });
  }

  /**
   * The frames of a compressed message: RSV1 on the first only (RFC 7692 §6.1), the
   * payload compressed with the connection's context or given by hand, cut as asked.
   */
  compressedFrames(spec: CompressedSpec, masked: boolean): Buffer[] {
    const codec = this.codec;
    if (codec === null) throw new Error('a compressed message on a connection without permessage-deflate');
    let payloads: Buffer[];
    if (spec.raw !== undefined) {
      payloads = spec.raw;
      codec.sentThrough(spec.data);
      if (spec.endsStream) codec.endStream();
    } else {
      const all = codec.compress(spec.data);
      const size = spec.fragmentSize ?? 0;
      payloads = [];
      if (size <= 0) payloads.push(all);
      else for (let i = 0; i < all.length; i += size) payloads.push(all.subarray(i, i + size));
    }
    const out: Buffer[] = [];
    payloads.forEach((data, i) => {
      const fin = i === payloads.length - 1;
      out.push(encodeFrame({ op: i === 0 ? spec.op : OP.cont, data, fin, rsv: i === 0 ? 4 : 0 }, masked));
      if (spec.pingsAfter?.includes(i)) out.push(encodeFrame({ op: OP.ping, data: pingAfterFrame(i) }, masked));
    });
    return out;
  }

  private onClose(payload: Buffer): void {
    let code: number | null = null;
    let reply = 1000;
    if (payload.length === 1) this.violations.push('Close with a 1-byte payload from the peer');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isSendableCloseCode(code)) this.violations.push(`Close with code ${code}, which may not be sent`);
      else reply = code;
      if (!isUtf8(payload.subarray(2))) this.violations.push('Close reason from the peer is not UTF-8');
    }
    this.peerClose = { code, reason: payload.subarray(2), at: Date.now() };
    if (!this.closeSent) this.sendClose(reply);
    // The server closes TCP first; a client waits for it.
    if (this.role === 'server') this.socket.end();
  }

  /** Sends a Close frame (once); further frames may still be sent by a case on purpose. */
  sendClose(code?: number, reason = ''): void {
    this.closeSent = true;
    this.write(encodeFrame({ op: OP.close, data: closePayload(code, reason) }, this.role === 'client'));
  }

  private write(bytes: Buffer): Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.write(bytes, (err) => {
        if (err) this.writeError ??= err;
        resolve();
      });
    });
  }

  /**
   * Sends the bytes of one step, chopped into writes that each wait to be handed to the
   * kernel. Stops as soon as the peer has closed or failed the connection.
   */
  async send(frames: Buffer[], chop: Chop, payloadLength = 0, between?: (writes: number) => Promise<void>): Promise<void> {
    const pieces: Buffer[] = [];
    if (chop === 'frame') pieces.push(...frames);
    else if (typeof chop === 'object') {
      const all = frames[0]!;
      const header = all.length - payloadLength;
      let from = 0;
      for (const cut of chop.payloadCuts) {
        pieces.push(all.subarray(from, header + cut));
        from = header + cut;
      }
      pieces.push(all.subarray(from));
    } else {
      const all = frames.length === 1 ? frames[0]! : Buffer.concat(frames);
      if (chop === 'all') pieces.push(all);
      else for (let i = 0; i < all.length; i += chop) pieces.push(all.subarray(i, i + chop));
    }
    for (let i = 0; i < pieces.length; i++) {
      if (this.peerGone || this.writeError) return;
      await this.write(pieces[i]!);
      if (between) await between(i + 1);
    }
  }
}

/** Did the peer's messages match? '' when they did, else what differs. */
function compare(got: Received[], want: Expected[]): string {
  const show = (m: Received | Expected): string => {
    const d =
      m.data.length > 24 ? `${m.data.length} bytes` : isUtf8(m.data) ? JSON.stringify(m.data.toString('utf8')) : `0x${m.data.toString('hex') || '(empty)'}`;
    return `${m.op} ${d}`;
  };
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    const g = got[i];
    const w = want[i];
    if (g === undefined) return `missing message #${i + 1} (${show(w!)}); got ${got.length} of ${want.length}`;
    if (w === undefined) return `unexpected message #${i + 1}: ${show(g)}`;
    if (g.op !== w.op || !g.data.equals(w.data)) return `message #${i + 1}: expected ${show(w)}, got ${show(g)}`;
    if (w.compressed !== undefined && g.compressed !== w.compressed) {
      const how = (c: boolean): string => (c ? 'compressed' : 'uncompressed');
      return `message #${i + 1} (${show(w)}) came ${how(g.compressed)}; wsframe sends it ${how(w.compressed)} (its threshold)`;
    }
  }
  return '';
}

/** Extra judgement from outside the connection (the echo-client's exit code). */
export type ExtraCheck = (failExpected: boolean) => Promise<{ reasons: string[]; exitCode?: number | null }>;

/** Runs a case on a connected, upgraded socket and judges it. */
export async function runCase(c: Case, conn: Conn, peer: string, extra?: ExtraCheck): Promise<CaseResult> {
  const started = Date.now();
  // The bound on the peer's silence whenever the suite waits for it (see Conn.waitFor).
  const timeout = c.timeout ?? DEFAULT_TIMEOUT;
  let silent = false;
  const masked = conn.role === 'client';
  const end = c.end ?? { clean: [1000] };
  const failExpected = 'fail' in end;
  const nonStrict: string[] = [];
  const failed: string[] = [];
  const checkpoint = async (ms: number): Promise<void> => {
    const early = await conn.waitFor(() => conn.peerGone, ms);
    if (!early) nonStrict.push(`did not fail fast: silent for ${ms} ms once the first invalid byte was sent`);
  };

  for (const step of c.steps as Step[]) {
    if ('send' in step) {
      if (step.send.some((f) => f.op === OP.close)) conn.closeSent = true;
      const bytes = step.send.map((f) => encodeFrame(f, masked));
      const payloadLength = typeof step.send[0]?.data === 'string' ? Buffer.byteLength(step.send[0].data) : (step.send[0]?.data?.length ?? 0);
      const at = step.checkpointAfter;
      await conn.send(bytes, step.chop ?? 'all', payloadLength, async (writes) => {
        if (writes === at) await checkpoint(FAIL_FAST_MS);
      });
    } else if ('sendCompressed' in step) {
      const bytes = step.sendCompressed.flatMap((m) => conn.compressedFrames(m, masked));
      await conn.send(bytes, step.chop ?? 'all');
    } else if ('pause' in step) {
      await new Promise((r) => setTimeout(r, step.pause));
    } else if ('checkpoint' in step) {
      await checkpoint(step.checkpoint);
    } else if ('awaitMessages' in step) {
      const n = step.awaitMessages;
      silent = !(await conn.waitFor(() => conn.messages.length >= n || conn.peerGone, timeout));
    }
    if (silent) break; // the peer stopped answering: the messages it owes are judged below
  }
  if (!conn.closeSent && !conn.peerGone) conn.sendClose(1000);

  const finished = await conn.waitFor(() => conn.tcpClosed, timeout);
  const durationMs = Date.now() - started;
  if (!finished) conn.abort();

  // Messages.
  const mismatch = compare(conn.messages, c.expect);
  if (mismatch !== '') {
    const prefix = conn.messages.length < c.expect.length && compare(conn.messages, c.expect.slice(0, conn.messages.length)) === '';
    if (failExpected && prefix) nonStrict.push(`failed the connection before echoing everything sent ahead of the violation (${mismatch})`);
    else failed.push(mismatch);
  }
  for (const v of new Set(conn.violations)) failed.push(`peer broke the protocol: ${v}`);

  // Ending.
  const pc = conn.peerClose;
  const codeText = (code: number | null): string => (code === null ? 'no code' : String(code));
  if (failExpected) {
    const codes = end.fail;
    if (pc === undefined) {
      if (conn.tcpEnded || conn.tcpClosed) nonStrict.push(`dropped ${conn.transport} without sending a Close`);
      else failed.push(`did not fail the connection: silent for ${timeout} ms`);
    } else if (pc.code === null || !codes.includes(pc.code)) {
      failed.push(`failed with close code ${codeText(pc.code)}, expected ${codes.join(' or ')}`);
    }
  } else {
    const codes = end.clean;
    if (pc === undefined) failed.push(conn.tcpEnded || conn.tcpClosed ? `closed ${conn.transport} without a Close` : `no Close: silent for ${timeout} ms`);
    else if (!codes.includes(pc.code)) failed.push(`closed with code ${codeText(pc.code)}, expected ${codes.map(codeText).join(' or ')}`);
  }
  if (!finished && (pc !== undefined || conn.tcpEnded)) failed.push(`${conn.transport} still open: silent for ${timeout} ms after the close`);

  let exitCode: number | null | undefined;
  if (extra) {
    const more = await extra(failExpected);
    failed.push(...more.reasons);
    exitCode = more.exitCode;
  }
  const verdict: Verdict = failed.length > 0 ? 'FAILED' : nonStrict.length > 0 ? 'NON-STRICT' : 'OK';
  return {
    id: c.id,
    section: sectionOf(c.id),
    title: c.title,
    peer,
    verdict,
    reasons: [...failed, ...nonStrict],
    durationMs,
    peerCloseCode: pc?.code,
    ...(exitCode !== undefined ? { exitCode } : {})
  };
}
