/** Assertions for the error tree, shared by the core tests. */
import type { ExecutionContext } from 'ava';
import { ProtocolError, ProtocolErrorCode } from '../../src';

/**
 * Asserts that `fn` throws an instance of exactly `cls` (not a subclass) with this stable
 * `code` and `closeCode`, and a message in the "Invalid WebSocket frame: …" form. Returns the
 * error for further checks.
 */
export function throwsProtocol<E extends ProtocolError>(
  t: ExecutionContext,
  fn: () => unknown,
  cls: abstract new (...args: never[]) => E,
  code: ProtocolErrorCode,
  closeCode: number
): E | undefined {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  if (!(thrown instanceof cls)) {
    t.fail(`expected ${cls.name} ${code}, got ${thrown === undefined ? 'no exception' : String(thrown)}`);
    return undefined;
  }
  t.is(thrown.constructor, cls, 'exact class');
  t.true(thrown instanceof ProtocolError);
  t.is(thrown.code, code);
  t.is(thrown.closeCode, closeCode);
  t.true(thrown.message.startsWith('Invalid WebSocket frame: '), thrown.message);
  return thrown;
}
