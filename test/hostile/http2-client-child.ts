/**
 * The victim of test/hostile/http2-client.test.ts, in its own process so its memory is its
 * own: our client connects over HTTP/2 (h2c) to WSFRAME_URL, reads one message (the hostile
 * server sends it once it has done its worst), waits a second for what is still on the way,
 * and reports what its memory grew by after a full GC (needs --expose-gc).
 */
import { connect, readData } from '../../src/index';

const send = (m: object): void => void process.send?.(m);
const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

async function main(): Promise<void> {
  gc();
  const before = process.memoryUsage();
  const ws = await connect(process.env.WSFRAME_URL!, { http2: true });
  const m = await readData(ws);
  await new Promise((r) => setTimeout(r, 1000));
  gc();
  const after = process.memoryUsage();
  send({ report: { message: m.data.toString(), rss: after.rss - before.rss, arrayBuffers: after.arrayBuffers - before.arrayBuffers } });
  ws.destroy();
}

main().then(
  () => setTimeout(() => process.exit(0), 100),
  (err: unknown) => {
    send({ report: { error: String(err) } });
    process.exit(1);
  }
);
