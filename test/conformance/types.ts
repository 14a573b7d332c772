/**
 * The shape of a conformance case: what the suite sends (frames, chopped into TCP writes as
 * the case says), what the peer must send back, and how the connection must end.
 */

import type { Negotiation } from './compression';

/** Opcodes as numbers: the suite also sends reserved ones on purpose. */
export const OP = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** One frame to put on the wire. The mask is chosen by the suite's role unless flipped. */
export interface FrameSpec {
  op: number;
  data?: Buffer | string;
  /** Defaults to true. */
  fin?: boolean;
  /** The three RSV bits as a number 0-7 (RSV1 is 4). */
  rsv?: number;
  /** Send the frame with the wrong masking for the suite's role. */
  flipMask?: boolean;
  /**
   * Announce this payload length in the header (64-bit form) and send no payload at all:
   * for length checks that must fire on the header alone.
   */
  claimLength?: bigint;
}

/**
 * A whole message the suite compresses itself (permessage-deflate, RFC 7692 §7.2.1) with
 * the connection's context, and sends with RSV1 on its first frame.
 */
export interface CompressedSpec {
  /** Text or binary. */
  op: number;
  /** The uncompressed payload: what the peer must inflate it to. */
  data: Buffer;
  /** Cut the compressed payload into frames of this many bytes (Autobahn's auto-fragment). Default: one frame. */
  fragmentSize?: number;
  /**
   * Hand-written compressed payloads, one per frame, sent instead of compressing `data`
   * (the suite's window still takes `data` in, as the receiver's does).
   */
  raw?: Buffer[];
  /**
   * The raw payload has a block with BFINAL, which ends a deflate stream: the receiver's
   * window restarts, so the suite's next message refers back to nothing sent so far.
   */
  endsStream?: boolean;
  /** Pings to put after these frame indexes (0: after the first frame). */
  pingsAfter?: number[];
}

/**
 * How a step's bytes are cut into TCP writes: 'all' is one write for the whole step,
 * 'frame' one write per frame, a number n writes of n bytes. Every write waits until its
 * bytes are handed to the kernel (Nagle is off), so each chunk leaves as its own segment.
 */
export type Chop = 'all' | 'frame' | number | PayloadCuts;

/**
 * One frame written in pieces cut at these payload offsets: the first write carries the
 * header and the payload up to the first cut (whatever the header size for the role).
 */
export interface PayloadCuts {
  payloadCuts: number[];
}

export type Step =
  /** `checkpointAfter`: a fail-fast checkpoint (FAIL_FAST_MS) after that many writes of this step. */
  | { send: FrameSpec[]; chop?: Chop; checkpointAfter?: number }
  /** Compressed messages (cases with `deflate` only), compressed as the step runs. */
  | { sendCompressed: CompressedSpec[]; chop?: Chop }
  | { pause: number }
  /** Fail-fast point: wait (until the peer was silent for `checkpoint` ms) for it to fail the connection here. */
  | { checkpoint: number }
  /** Wait until this many messages (data or control, Close excluded) have come back. */
  | { awaitMessages: number };

/** A message the peer must send back: a whole data message or a control frame. */
export interface Expected {
  op: 'text' | 'binary' | 'ping' | 'pong';
  data: Buffer;
  /**
   * With permessage-deflate: whether the peer must send this message compressed. RFC 7692
   * lets a peer compress any message or none; wsframe compresses exactly the messages from
   * its threshold on, and the cases check that (undefined: either).
   */
  compressed?: boolean;
}

/** How the connection must end. */
export type Ending =
  /** A close handshake; the peer's Close carries one of these codes (null: no code). */
  | { clean: Array<number | null> }
  /** The peer fails the connection: a Close with one of these codes, then TCP closes. */
  | { fail: number[] };

export interface Case {
  /** "1.1.1" style number. */
  id: string;
  /** One line: what is sent. */
  title: string;
  steps: Step[];
  /** Messages the peer must send back, in order. */
  expect: Expected[];
  /** Default: clean close with 1000 (the suite sends Close 1000 after the steps unless a step sent a Close). */
  end?: Ending;
  /**
   * Bound in ms (default 5000) on the peer's silence whenever the suite waits for it (its
   * echoes, its Close, TCP closing): a peer that keeps making progress is never cut off.
   */
  timeout?: number;
  /** Only in the full run (CONFORMANCE_FULL=1): the 16 MiB messages and the slowest cases. */
  full?: boolean;
  /** Run alone (no other case at the same time): timed cases. */
  alone?: boolean;
  /** Negotiate permessage-deflate (RFC 7692) in the handshake: sections 12 and 13. */
  deflate?: Negotiation;
}

export type Verdict = 'OK' | 'NON-STRICT' | 'FAILED';

export interface CaseResult {
  id: string;
  section: number;
  title: string;
  /** Which wsframe program was under test. */
  peer: 'echo-server' | 'echo-client' | string;
  verdict: Verdict;
  /** Why the verdict is not OK (empty for OK). */
  reasons: string[];
  durationMs: number;
  /** Close code the peer sent (null: no code; undefined: no Close at all). */
  peerCloseCode?: number | null;
  /** echo-client's exit code (suite as server only). */
  exitCode?: number | null;
}

export function sectionOf(id: string): number {
  return Number(id.split('.')[0]);
}
