/**
 * The parts of `ws` the benchmark drives directly: `Sender.frame` (frame building) and
 * `Receiver` (frame parsing), which `@types/ws` does not declare, and a check that ws
 * really unmasks with the native `bufferutil`.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import WebSocket from 'ws';

/** Options of `Sender.frame` (ws/lib/sender.js). */
export interface WsFrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  /** The caller's data must not be modified: a masked payload is masked into a new buffer. */
  readOnly: boolean;
}

/** ws's `Receiver`: a Writable fed with socket chunks, emitting 'message' (data, isBinary). */
export interface WsReceiver extends Writable {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: string, listener: (...args: never[]) => void): this;
}

export interface WsReceiverOptions {
  isServer: boolean;
  /** 0: no limit. ws's own default in `WebSocket` is 100 MiB. */
  maxPayload: number;
  binaryType?: 'nodebuffer';
  skipUTF8Validation?: boolean;
}

const ws = WebSocket as unknown as {
  Sender: { frame(data: Buffer, options: WsFrameOptions): Buffer[] };
  Receiver: new (options: WsReceiverOptions) => WsReceiver;
};

/** `Sender.frame(data, options)`: returns `[header, data]` (unmasked) or `[frame]` (masked, readOnly). */
export const wsFrame: (data: Buffer, options: WsFrameOptions) => Buffer[] = ws.Sender.frame;
export const WsReceiverClass = ws.Receiver;

/**
 * Describes how ws masks and unmasks: 'native' when its buffer-util delegates to a native
 * `bufferutil` (used by ws for payloads of 32 bytes and more when unmasking, 48 when masking).
 */
export function bufferutilStatus(): string {
  // ws exports only its root, so its buffer-util is loaded by path.
  const load = createRequire(__filename);
  const wsDir = path.dirname(load.resolve('ws/package.json'));
  const bu = load(path.join(wsDir, 'lib', 'buffer-util.js')) as { mask: () => void; unmask: () => void };
  const usesBufferutil = /bufferUtil\.unmask/.test(bu.unmask.toString());
  let native = false;
  let version = '?';
  try {
    const b = load('bufferutil') as { unmask: () => void };
    native = /\[native code\]/.test(b.unmask.toString());
    version = (load('bufferutil/package.json') as { version: string }).version;
  } catch {
    // not installed
  }
  if (process.env.WS_NO_BUFFER_UTIL) return 'disabled (WS_NO_BUFFER_UTIL)';
  if (usesBufferutil && native) return `native (bufferutil ${version}, used by ws)`;
  if (usesBufferutil) return `JS fallback (bufferutil ${version} has no native build here)`;
  return 'not used by ws (JS masking)';
}
