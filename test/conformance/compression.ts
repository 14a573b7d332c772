/**
 * The suite's own permessage-deflate (RFC 7692): the `Sec-WebSocket-Extensions` values it
 * writes and checks, and the compression of one connection. It uses `node:zlib` directly,
 * never wsframe's src/compression/deflate.ts or core/extensions.ts, so the bytes the suite sends and its
 * reading of the peer's messages do not depend on the code under test.
 *
 * Each message is compressed and inflated in one synchronous zlib call. Context takeover is
 * done with a preset dictionary: the last 2^windowBits bytes of the messages that went
 * through the compressor before (what the other end's LZ77 window holds), so the suite's
 * messages refer back into earlier ones just as a long-lived stream's would.
 */
import zlib from 'node:zlib';

/** The parameters in force on a connection (RFC 7692 §7.1). */
export interface DeflateParamSet {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** 8–15; 15 when not negotiated. */
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/**
 * wsframe's `perMessageDeflate` options for the peer under test, as JSON: the echo server
 * gets them per connection (in the request path), the echo client per process.
 */
export interface PeerDeflateOptions {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
  threshold?: number;
}

/** wsframe's default threshold: it sends smaller messages uncompressed. */
export const WSFRAME_THRESHOLD = 1024;

/**
 * How a case negotiates permessage-deflate. Parameter lists are written as in the header,
 * without the extension name: 'server_no_context_takeover; server_max_window_bits=9'.
 */
export interface Negotiation {
  /** The parameters wsframe's server must answer (suite as client). */
  response: string;
  /** Suite as client: the offer (whole header value). Default: the response's parameters, plus client_max_window_bits. */
  offer?: string;
  /** Suite as server: the parameters it answers. Default: `response`. */
  answer?: string;
  /** wsframe's options (default: none, i.e. `perMessageDeflate: true`). */
  peer?: PeerDeflateOptions;
}

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** One element of an extension list: its name and parameters in order. */
export interface Element {
  name: string;
  params: Array<[string, string | true]>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1), strictly: tokens, `;` and `,`,
 * values as tokens or quoted strings whose content is a token.
 * @throws {Error} saying what does not follow the grammar
 */
export function parseExtensionList(value: string): Element[] {
  const out: Element[] = [];
  for (const raw of value.split(',')) {
    if (raw.trim() === '') continue; // empty list elements are allowed (RFC 7230 §7)
    const [name, ...params] = raw.split(';').map((s) => s.trim());
    if (!TOKEN.test(name!)) throw new Error(`extension name ${JSON.stringify(name)} is not a token`);
    const element: Element = { name: name!.toLowerCase(), params: [] };
    for (const p of params) {
      const eq = p.indexOf('=');
      const key = (eq < 0 ? p : p.slice(0, eq)).trim();
      if (!TOKEN.test(key)) throw new Error(`parameter name ${JSON.stringify(key)} is not a token`);
      let v: string | true = true;
      if (eq >= 0) {
        v = p.slice(eq + 1).trim();
        if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
        if (!TOKEN.test(v)) throw new Error(`value of ${key} is not a token: ${JSON.stringify(v)}`);
      }
      element.params.push([key.toLowerCase(), v]);
    }
    out.push(element);
  }
  return out;
}

/** The parameters of a permessage-deflate element, checked against RFC 7692 §7.1. */
export interface DeflateElement {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits?: number;
  /** true: present without a value (only allowed in an offer). */
  clientMaxWindowBits?: number | true;
}

/**
 * Reads the parameters of one permessage-deflate element. `inResponse`: a server's answer,
 * where client_max_window_bits must carry a value (§7.1.2.2).
 * @throws {Error} for an unknown or repeated parameter, or a value that is not allowed
 */
export function readDeflateElement(e: Element, inResponse: boolean): DeflateElement {
  const out: DeflateElement = { serverNoContextTakeover: false, clientNoContextTakeover: false };
  const seen = new Set<string>();
  const bits = (name: string, v: string | true): number => {
    // 8-15 in decimal, no leading zero (§7.1.2.1).
    if (v === true || !/^(?:8|9|1[0-5])$/.test(v)) throw new Error(`${name} must be 8 to 15, not ${v === true ? 'absent' : JSON.stringify(v)}`);
    return Number(v);
  };
  for (const [name, v] of e.params) {
    if (seen.has(name)) throw new Error(`parameter ${name} appears twice`);
    seen.add(name);
    if (name === 'server_no_context_takeover' || name === 'client_no_context_takeover') {
      if (v !== true) throw new Error(`${name} takes no value`);
      if (name === 'server_no_context_takeover') out.serverNoContextTakeover = true;
      else out.clientNoContextTakeover = true;
    } else if (name === 'server_max_window_bits') out.serverMaxWindowBits = bits(name, v);
    else if (name === 'client_max_window_bits') out.clientMaxWindowBits = v === true && !inResponse ? true : bits(name, v);
    else throw new Error(`unknown parameter ${name}`);
  }
  return out;
}

/** The header value for a list of parameters: 'permessage-deflate; a; b=9'. */
export function deflateHeader(params: string): string {
  return params.trim() === '' ? PERMESSAGE_DEFLATE : `${PERMESSAGE_DEFLATE}; ${params.trim()}`;
}

/** The offer the suite sends as client: the case's, or the response's parameters plus client_max_window_bits. */
export function offerOf(n: Negotiation): string {
  if (n.offer !== undefined) return n.offer;
  return /client_max_window_bits/.test(n.response) ? deflateHeader(n.response) : deflateHeader(`${n.response}; client_max_window_bits`.replace(/^; /, ''));
}

/** Compares two parameter lists as sets of name[=value]. */
function sameParams(a: Element, b: Element): boolean {
  const show = (e: Element): string =>
    e.params
      .map(([k, v]) => (v === true ? k : `${k}=${v}`))
      .sort()
      .join('; ');
  return show(a) === show(b);
}

/** What both ends agreed, from the accepted element and the offer it answers. */
function agreedFrom(response: DeflateElement, offer: DeflateElement): DeflateParamSet {
  // A client that offered client_max_window_bits=N compresses with at most N even when the
  // server leaves the parameter out of its answer.
  const offeredClientBits = typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : 15;
  return {
    serverNoContextTakeover: response.serverNoContextTakeover,
    clientNoContextTakeover: response.clientNoContextTakeover || offer.clientNoContextTakeover,
    serverMaxWindowBits: response.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: Math.min(typeof response.clientMaxWindowBits === 'number' ? response.clientMaxWindowBits : 15, offeredClientBits)
  };
}

/**
 * Suite as client: checks the server's `Sec-WebSocket-Extensions` answer to `offer` against
 * RFC 7692 §7.1 and against what the case expects wsframe to answer.
 * @returns the parameters in force
 * @throws {Error} saying what is wrong (the case cannot run)
 */
export function checkResponse(header: string | undefined, n: Negotiation): DeflateParamSet {
  if (header === undefined || header.trim() === '') throw new Error('the server declined permessage-deflate (no Sec-WebSocket-Extensions in its 101, or its 200 over HTTP/2)');
  const elements = parseExtensionList(header);
  const offers = parseExtensionList(offerOf(n)).filter((e) => e.name === PERMESSAGE_DEFLATE);
  if (elements.length !== 1 || elements[0]!.name !== PERMESSAGE_DEFLATE) {
    throw new Error(`the server must answer one permessage-deflate element, not ${JSON.stringify(header)}`);
  }
  const got = readDeflateElement(elements[0]!, true);
  // The answer must accept one of the offers (§7.1): it may add server_no_context_takeover,
  // client_no_context_takeover and server_max_window_bits, must keep what it accepts, and may
  // only lower window sizes (client_max_window_bits only when offered).
  const accepts = (o: DeflateElement): boolean =>
    (!o.serverNoContextTakeover || got.serverNoContextTakeover) &&
    (o.serverMaxWindowBits === undefined || (got.serverMaxWindowBits !== undefined && got.serverMaxWindowBits <= o.serverMaxWindowBits)) &&
    (got.clientMaxWindowBits === undefined ||
      (o.clientMaxWindowBits !== undefined && (o.clientMaxWindowBits === true || (got.clientMaxWindowBits as number) <= o.clientMaxWindowBits)));
  const offered = offers.map((o) => readDeflateElement(o, false));
  const index = offered.findIndex(accepts);
  if (index < 0) throw new Error(`the server's answer ${JSON.stringify(header)} accepts none of the offers ${JSON.stringify(offerOf(n))}`);
  if (!sameParams(elements[0]!, parseExtensionList(deflateHeader(n.response))[0]!)) {
    throw new Error(`the server answered ${JSON.stringify(header)}, expected ${JSON.stringify(deflateHeader(n.response))}`);
  }
  return agreedFrom(got, offered[index]!);
}

/**
 * Suite as server: checks the client's offer (RFC 7692 §7.1, and that it asks for what
 * wsframe was told to ask for) and returns the answer to send with the parameters in force.
 * @throws {Error} saying what is wrong with the offer
 */
export function answerOffer(header: string | undefined, n: Negotiation): { answer: string; agreed: DeflateParamSet } {
  if (header === undefined) throw new Error('the client offered no extension');
  const offers = parseExtensionList(header);
  const first = offers.find((e) => e.name === PERMESSAGE_DEFLATE);
  if (first === undefined) throw new Error(`the client did not offer permessage-deflate: ${JSON.stringify(header)}`);
  const offer = readDeflateElement(first, false);
  const p = n.peer ?? {};
  const missing: string[] = [];
  if (p.serverNoContextTakeover && !offer.serverNoContextTakeover) missing.push('server_no_context_takeover');
  if (p.clientNoContextTakeover && !offer.clientNoContextTakeover) missing.push('client_no_context_takeover');
  if (p.serverMaxWindowBits !== undefined && offer.serverMaxWindowBits !== p.serverMaxWindowBits) missing.push(`server_max_window_bits=${p.serverMaxWindowBits}`);
  const wantClientBits = p.clientMaxWindowBits === undefined ? true : p.clientMaxWindowBits;
  if (offer.clientMaxWindowBits !== wantClientBits) missing.push(wantClientBits === true ? 'client_max_window_bits' : `client_max_window_bits=${wantClientBits}`);
  if (missing.length > 0) throw new Error(`the client's offer ${JSON.stringify(header)} lacks ${missing.join(', ')}`);
  const answer = deflateHeader(n.answer ?? n.response);
  const got = readDeflateElement(parseExtensionList(answer)[0]!, true);
  return { answer, agreed: agreedFrom(got, offer) };
}

/**
 * An honest server's answer: accepts the first permessage-deflate offer with exactly the
 * parameters it asks for (for the broken echo server of broken-peer.test.ts).
 * @throws {Error} when nothing acceptable is offered
 */
export function acceptFirstOffer(header: string | undefined): { answer: string; agreed: DeflateParamSet } {
  const first = parseExtensionList(header ?? '').find((e) => e.name === PERMESSAGE_DEFLATE);
  if (first === undefined) throw new Error('no permessage-deflate offer');
  const offer = readDeflateElement(first, false);
  const params: string[] = [];
  if (offer.serverNoContextTakeover) params.push('server_no_context_takeover');
  if (offer.clientNoContextTakeover) params.push('client_no_context_takeover');
  if (offer.serverMaxWindowBits !== undefined) params.push(`server_max_window_bits=${offer.serverMaxWindowBits}`);
  if (typeof offer.clientMaxWindowBits === 'number' && offer.clientMaxWindowBits < 15) params.push(`client_max_window_bits=${offer.clientMaxWindowBits}`);
  const answer = deflateHeader(params.join('; '));
  return { answer, agreed: agreedFrom(readDeflateElement(parseExtensionList(answer)[0]!, true), offer) };
}

// The empty stored block a sync flush ends with (§7.2.1 strips it, §7.2.2 appends it).
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** The last `n` bytes of the history followed by `more`. */
function keepLast(history: Buffer, more: Buffer, n: number): Buffer {
  if (more.length >= n) return Buffer.from(more.subarray(more.length - n));
  const keep = Math.min(history.length, n - more.length);
  return Buffer.concat([history.subarray(history.length - keep), more]);
}

/**
 * Compresses one whole message as RFC 7692 §7.2.1 says: a raw deflate stream ended by a
 * sync flush, without its 4-byte tail. `dictionary`: the LZ77 window the receiver holds.
 */
export function compressMessage(data: Buffer, windowBits: number, dictionary?: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, {
    windowBits,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
    ...(dictionary !== undefined && dictionary.length > 0 ? { dictionary } : {})
  });
  if (!out.subarray(out.length - 4).equals(TAIL)) throw new Error('zlib: a sync flush did not end with 00 00 ff ff');
  return out.subarray(0, out.length - 4);
}

/**
 * The compression of one connection as the suite's side of it: `compress` for what it
 * sends, `inflate` for what the peer sends, each with the window and context rules agreed.
 */
export class DeflateCodec {
  private sent: Buffer = Buffer.alloc(0);
  private received: Buffer = Buffer.alloc(0);

  constructor(
    readonly params: DeflateParamSet,
    readonly role: 'client' | 'server'
  ) {}

  private get ownBits(): number {
    return this.role === 'client' ? this.params.clientMaxWindowBits : this.params.serverMaxWindowBits;
  }
  private get peerBits(): number {
    return this.role === 'client' ? this.params.serverMaxWindowBits : this.params.clientMaxWindowBits;
  }
  private get ownNoTakeover(): boolean {
    return this.role === 'client' ? this.params.clientNoContextTakeover : this.params.serverNoContextTakeover;
  }
  private get peerNoTakeover(): boolean {
    return this.role === 'client' ? this.params.serverNoContextTakeover : this.params.clientNoContextTakeover;
  }

  /** Compresses a message the suite sends, referring back into its earlier ones unless no context takeover was agreed. */
  compress(data: Buffer): Buffer {
    const out = compressMessage(data, this.ownBits, this.ownNoTakeover ? undefined : this.sent);
    this.sentThrough(data);
    return out;
  }

  /** Records a message sent compressed by other means (hand-written payloads): the receiver's window now holds it. */
  sentThrough(data: Buffer): void {
    if (!this.ownNoTakeover) this.sent = keepLast(this.sent, data, 1 << this.ownBits);
  }

  /** The suite's sending side ended its deflate stream (a block with BFINAL): the next message starts a new window. */
  endStream(): void {
    this.sent = Buffer.alloc(0);
  }

  /**
   * Inflates one whole compressed message from the peer (the tail of §7.2.2 appended). The
   * output is taken in pieces of a quarter window, so a back-reference further than the
   * agreed window (plus that quarter) fails as zlib's "invalid distance too far back"; with
   * no context takeover, any reference into an earlier message fails that way. A block with
   * BFINAL ends a deflate stream, and what follows it in the message is a new stream with
   * an empty window (§7.2.1: "The next DEFLATE block follows the padded data if any").
   * @throws {Error} from zlib for data that does not inflate
   */
  inflate(payload: Buffer): Buffer {
    const bits = this.peerBits;
    let input = Buffer.concat([payload, TAIL]);
    let dictionary = this.peerNoTakeover ? undefined : this.received;
    const outs: Buffer[] = [];
    for (;;) {
      const { buffer, engine } = zlib.inflateRawSync(input, {
        info: true,
        windowBits: bits,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        // Node's smallest chunk is 64 bytes; a window of 15 bits is zlib's own limit anyway.
        ...(bits < 15 ? { chunkSize: Math.max(64, (1 << bits) / 4) } : {}),
        ...(dictionary !== undefined && dictionary.length > 0 ? { dictionary } : {})
      }) as unknown as { buffer: Buffer; engine: zlib.InflateRaw };
      outs.push(buffer);
      const used = engine.bytesWritten;
      if (used >= input.length) break;
      // The stream ended (BFINAL) with input left: a new stream starts there.
      input = input.subarray(used);
      dictionary = undefined;
      this.received = Buffer.alloc(0);
    }
    const out = outs.length === 1 ? outs[0]! : Buffer.concat(outs);
    if (!this.peerNoTakeover) this.received = keepLast(this.received, outs[outs.length - 1]!, 1 << bits);
    return out;
  }
}
