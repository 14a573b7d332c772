// A self-signed certificate for localhost and 127.0.0.1, made with openssl for the TLS tests.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { within } from './wait';

/** Makes a fresh key and self-signed certificate (valid one day) in a temporary folder. */
export async function selfSignedCert(ms = 20_000): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsframe-tls-'));
  try {
    await within(
      promisify(execFile)('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '1',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'
      ], { cwd: dir }),
      'openssl',
      ms
    );
    return { key: fs.readFileSync(path.join(dir, 'k.pem')), cert: fs.readFileSync(path.join(dir, 'c.pem')) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
