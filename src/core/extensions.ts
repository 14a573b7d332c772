/**
 * The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1) and the negotiation of
 * permessage-deflate (RFC 7692 §7.1), pure: header values in, agreed parameters out.
 * @module
 */
import { isToken } from './handshake';
import { BOOLEAN, type Rules, checkOptions, countRule } from './options';

/**
 * One extension of a `Sec-WebSocket-Extensions` list, with its parameters in order.
 * @group Compression
 */
export interface ExtensionOffer {
  /** The extension name, lower-cased. */
  name: string;
  /** Parameters as written (names lower-cased); `true` for a parameter without a value. */
  params: Array<[string, string | true]>;
}

/**
 * Parses a `Sec-WebSocket-Extensions` value (several header lines may be joined with
 * commas). Quoted values are unquoted and must then be tokens (§9.1).
 * @throws {SyntaxError} when the value does not follow the grammar of RFC 6455 §9.1
 * @group Compression
 */
export function parseExtensions(value: string): ExtensionOffer[] {
  const out: ExtensionOffer[] = [];
  let i = 0;
  const n = value.length;
  const fail = (what: string): never => {
    throw new SyntaxError(`invalid Sec-WebSocket-Extensions header (${what} at ${i}): ${JSON.stringify(value)}`);
  };
  const skipSpace = (): void => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && isToken(value[i]!)) i++;
    if (i === start) fail('expected a token');
    return value.slice(start, i);
  };
  const quoted = (): string => {
    i++; // the opening quote
    let text = '';
    while (i < n && value[i] !== '"') {
      if (value[i] === '\\') i++;
      if (i >= n) break;
      text += value[i++];
    }
    if (i >= n) fail('unterminated quoted string');
    i++;
    if (!isToken(text)) fail('a quoted value must be a token');
    return text;
  };
  for (;;) {
    skipSpace();
    if (i >= n) break;
    if (value[i] === ',') {
      // Empty list elements are allowed by the #rule of RFC 7230 §7.
      i++;
      continue;
    }
    const offer: ExtensionOffer = { name: token().toLowerCase(), params: [] };
    skipSpace();
    while (i < n && value[i] === ';') {
      i++;
      skipSpace();
      const name = token().toLowerCase();
      skipSpace();
      let param: string | true = true;
      if (value[i] === '=') {
        i++;
        skipSpace();
        param = value[i] === '"' ? quoted() : token();
        skipSpace();
      }
      offer.params.push([name, param]);
    }
    out.push(offer);
    if (i < n && value[i] !== ',') fail('expected "," or ";"');
  }
  return out;
}

/**
 * The name of the permessage-deflate extension.
 * @group Compression
 */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/**
 * The permessage-deflate parameters both ends agreed on (RFC 7692 §7.1).
 * @group Compression
 */
export interface DeflateParams {
  /** The server resets its compression context after each message. */
  serverNoContextTakeover: boolean;
  /** The client resets its compression context after each message. */
  clientNoContextTakeover: boolean;
  /** Base-2 log of the server's LZ77 window (8–15). */
  serverMaxWindowBits: number;
  /** Base-2 log of the client's LZ77 window (8–15). */
  clientMaxWindowBits: number;
}

/**
 * What one end asks for. On the client these go into the offer; on the server they bound
 * what is accepted. Window sizes are base-2 logs, 8–15; smaller ones cost less memory.
 * @group Compression
 */
export interface DeflateNegotiation {
  /** Ask (client) or require (server) that the server resets its context after each message. Default false. */
  serverNoContextTakeover?: boolean;
  /** Ask (client) or require (server) that the client resets its context after each message. Default false. */
  clientNoContextTakeover?: boolean;
  /** Largest window the server may compress with. Default 15. */
  serverMaxWindowBits?: number;
  /**
   * Largest window the client may compress with. Default 15. A server with a smaller value
   * declines offers that do not let it limit the client's window.
   */
  clientMaxWindowBits?: number;
}


/** @internal The rules of {@link DeflateNegotiation} (`checkOptions`). */
export const NEGOTIATION_RULES: Rules = {
  options: {
    serverNoContextTakeover: BOOLEAN,
    clientNoContextTakeover: BOOLEAN,
    serverMaxWindowBits: countRule(8, 15),
    clientMaxWindowBits: countRule(8, 15)
  }
};

// A window size as written in a header: 8–15 in decimal, no leading zero (§7.1.2).
function parseBits(value: string | true): number | null {
  return value !== true && /^(?:8|9|1[0-5])$/.test(value) ? Number(value) : null;
}

/** A permessage-deflate element's parameters, checked; null when invalid. */
interface ParsedDeflate {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** undefined: absent; true: present without a value. */
  clientMaxWindowBits: number | true | undefined;
}

// RFC 7692 §7.1: unknown or repeated parameters, and values that are not allowed, make an
// element invalid. `response` is true for a server's answer, where every window size must
// carry a value.
function parseDeflateParams(params: Array<[string, string | true]>, response: boolean): ParsedDeflate | string {
  const seen = new Set<string>();
  const out: ParsedDeflate = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined
  };
  for (const [name, value] of params) {
    if (seen.has(name)) return `parameter ${name} appears twice`;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) return `${name} takes no value`;
        if (name === 'server_no_context_takeover') out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits': {
        const bits = parseBits(value);
        if (bits === null) return `invalid value for server_max_window_bits: ${String(value)}`;
        out.serverMaxWindowBits = bits;
        break;
      }
      case 'client_max_window_bits': {
        if (value === true && !response) {
          out.clientMaxWindowBits = true;
          break;
        }
        const bits = parseBits(value);
        if (bits === null) return `invalid value for client_max_window_bits: ${String(value)}`;
        out.clientMaxWindowBits = bits;
        break;
      }
      default:
        return `unknown parameter ${name}`;
    }
  }
  return out;
}

/**
 * The client's offer (RFC 7692 §7.1): `client_max_window_bits` is always included, so the
 * server may limit our window; the other parameters only when asked for.
 * @group Compression
 */
export function deflateOffer(options: DeflateNegotiation): string {
  checkOptions(options, NEGOTIATION_RULES, 'deflateOffer() options');
  let offer = PERMESSAGE_DEFLATE;
  if (options.serverNoContextTakeover) offer += '; server_no_context_takeover';
  if (options.clientNoContextTakeover) offer += '; client_no_context_takeover';
  if (options.serverMaxWindowBits !== undefined) offer += `; server_max_window_bits=${options.serverMaxWindowBits}`;
  offer +=
    options.clientMaxWindowBits !== undefined
      ? `; client_max_window_bits=${options.clientMaxWindowBits}`
      : '; client_max_window_bits';
  return offer;
}

/**
 * What the server agreed to: the response element and the parameters in force.
 * @group Compression
 */
export interface DeflateAcceptance {
  /** The value for the response's `Sec-WebSocket-Extensions` header. */
  response: string;
  params: DeflateParams;
}

/**
 * The server's side of the negotiation: picks the first permessage-deflate offer it can
 * accept within `options` (offers are alternatives in order of preference) and builds the
 * response. Invalid offers (unknown, repeated or malformed parameters) are declined, as
 * RFC 7692 §7.1 requires; so is an offer that does not let the server limit the client's
 * window when `clientMaxWindowBits` asks for it.
 * @param header the request's `Sec-WebSocket-Extensions` value, if any
 * @returns null when no offer is accepted (the connection goes on without compression)
 * @throws {SyntaxError} for a header that does not parse (answer 400)
 * @group Compression
 */
export function acceptDeflate(header: string | undefined, options: DeflateNegotiation): DeflateAcceptance | null {
  if (header === undefined) return null;
  checkOptions(options, NEGOTIATION_RULES, 'acceptDeflate() options');
  const wantServerBits = options.serverMaxWindowBits ?? 15;
  const wantClientBits = options.clientMaxWindowBits ?? 15;
  for (const offer of parseExtensions(header)) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const p = parseDeflateParams(offer.params, false);
    if (typeof p === 'string') continue;
    // The client's window can only be limited if it said it supports the parameter.
    if (wantClientBits < 15 && p.clientMaxWindowBits === undefined) continue;
    const params: DeflateParams = {
      serverNoContextTakeover: p.serverNoContextTakeover || options.serverNoContextTakeover === true,
      clientNoContextTakeover: p.clientNoContextTakeover || options.clientNoContextTakeover === true,
      serverMaxWindowBits: Math.min(p.serverMaxWindowBits ?? 15, wantServerBits),
      clientMaxWindowBits: Math.min(typeof p.clientMaxWindowBits === 'number' ? p.clientMaxWindowBits : 15, wantClientBits)
    };
    let response = PERMESSAGE_DEFLATE;
    if (params.serverNoContextTakeover) response += '; server_no_context_takeover';
    if (params.clientNoContextTakeover) response += '; client_no_context_takeover';
    // An offered server_max_window_bits is accepted by answering it (§7.1.2.1).
    if (p.serverMaxWindowBits !== undefined || params.serverMaxWindowBits < 15) {
      response += `; server_max_window_bits=${params.serverMaxWindowBits}`;
    }
    // client_max_window_bits may be answered only when offered (§7.1.2.2).
    if (p.clientMaxWindowBits !== undefined && params.clientMaxWindowBits < 15) {
      response += `; client_max_window_bits=${params.clientMaxWindowBits}`;
    }
    return { response, params };
  }
  return null;
}

/**
 * The client's check of the server's answer to {@link deflateOffer} (RFC 7692 §7.1): one
 * permessage-deflate element at most, no other extension, valid parameters that honour
 * the offer.
 * @param header the response's `Sec-WebSocket-Extensions` value, if any
 * @returns the parameters in force, or null when the server declined compression
 * @throws {Error} with a message saying what is wrong (the caller fails the handshake)
 * @group Compression
 */
export function checkDeflateResponse(header: string | undefined, offered: DeflateNegotiation | null): DeflateParams | null {
  if (header === undefined || header.trim() === '') return null;
  const elements = parseExtensions(header);
  if (elements.length === 0) return null;
  if (offered === null) throw new Error(`the server enabled extensions that were not offered: ${header}`);
  for (const e of elements) {
    if (e.name !== PERMESSAGE_DEFLATE) throw new Error(`the server enabled extension ${e.name}, which was not offered`);
  }
  if (elements.length > 1) throw new Error('the server answered permessage-deflate more than once');
  const p = parseDeflateParams(elements[0]!.params, true);
  if (typeof p === 'string') throw new Error(`invalid permessage-deflate response: ${p}`);
  if (offered.serverNoContextTakeover && !p.serverNoContextTakeover) {
    throw new Error('the server did not accept server_no_context_takeover');
  }
  if (offered.serverMaxWindowBits !== undefined) {
    if (p.serverMaxWindowBits === undefined) throw new Error('the server did not accept server_max_window_bits');
    if (p.serverMaxWindowBits > offered.serverMaxWindowBits) {
      throw new Error(`the server answered server_max_window_bits=${p.serverMaxWindowBits}, above the offer`);
    }
  }
  const offeredClientBits = offered.clientMaxWindowBits ?? 15;
  const clientBits = typeof p.clientMaxWindowBits === 'number' ? p.clientMaxWindowBits : offeredClientBits;
  if (clientBits > offeredClientBits) {
    throw new Error(`the server answered client_max_window_bits=${clientBits}, above the offer`);
  }
  return {
    serverNoContextTakeover: p.serverNoContextTakeover,
    clientNoContextTakeover: p.clientNoContextTakeover || offered.clientNoContextTakeover === true,
    serverMaxWindowBits: p.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: clientBits
  };
}

/**
 * The agreed permessage-deflate parameters in the syntax of the header (RFC 7692 §7.1), with
 * both window sizes always written out, e.g. `permessage-deflate; server_max_window_bits=15;
 * client_max_window_bits=15`.
 */
export function describeDeflate(params: DeflateParams): string {
  let text = PERMESSAGE_DEFLATE;
  if (params.serverNoContextTakeover) text += '; server_no_context_takeover';
  if (params.clientNoContextTakeover) text += '; client_no_context_takeover';
  return `${text}; server_max_window_bits=${params.serverMaxWindowBits}; client_max_window_bits=${params.clientMaxWindowBits}`;
}
