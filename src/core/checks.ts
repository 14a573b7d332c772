/**
 * Checks of what a caller passes: the type of a payload or an option, with an error that
 * names the argument and says what was given (plain JavaScript, `any` and JSON reach here).
 * @module
 */

/** How a value is named in an error message: its type, and the value itself when short. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name ? `a ${name}` : 'an object';
}

/** @throws {TypeError} unless `value` is a Uint8Array (a Buffer is one) */
export function checkBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array or Buffer, not ${describeValue(value)}${typeof value === 'string' ? ' (send text with sendText)' : ''}`);
  }
}

/** @throws {TypeError} unless `value` is a string */
export function checkString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, not ${describeValue(value)}${value instanceof Uint8Array ? ' (send bytes with sendBinary)' : ''}`);
  }
}

/** @throws {TypeError} unless `value` is a string or a Uint8Array */
export function checkBytesOrString(value: unknown, name: string): asserts value is string | Uint8Array {
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a string, a Uint8Array or a Buffer, not ${describeValue(value)}`);
  }
}

/** @throws {TypeError} unless `value` is a boolean or undefined */
export function checkOptionalBoolean(value: unknown, name: string): asserts value is boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${name} must be true or false, not ${describeValue(value)}`);
}
