/**
 * The server side of the hostile tests that need their own process: a `listen()` echo server
 * whose crash or stderr output is the parent's to observe (see harness.ts). Options come as
 * JSON in the environment; `verify: 'hold'` makes every verify wait until the parent sends
 * `release`. Messages to the parent: `{ ready: port }`, `{ verifying: n }` when a verify
 * starts, `{ upgradeClosed: n }` when a socket handed to 'upgrade' closes, `{ pong }`.
 */
import type http from 'node:http';
import { ListenOptions, Opcode, listen, readData, sendBinary, sendText } from '../../src/index';

interface ChildConfig {
  options?: Partial<ListenOptions>;
  verify?: 'hold';
}

const config = JSON.parse(process.env.WSFRAME_HOSTILE ?? '{}') as ChildConfig;
const send = (m: object): void => void process.send?.(m);
const held: (() => void)[] = [];
let verifying = 0;
let upgradeClosed = 0;

const verify =
  config.verify === 'hold'
    ? (_req: http.IncomingMessage): Promise<undefined> =>
        new Promise((resolve) => {
          held.push(() => resolve(undefined));
          send({ verifying: ++verifying });
        })
    : undefined;

listen({ ...config.options, verify }, async (ws) => {
  for (;;) {
    const m = await readData(ws);
    if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString());
    else if (m.opcode === Opcode.Binary) await sendBinary(ws, m.data);
    else if (m.opcode === Opcode.Close) return;
  }
}).then((server) => {
  // Only a 'close' listener: it must not change who handles the socket's errors.
  server.httpServer.on('upgrade', (_req, socket: NodeJS.ReadableStream & { once(e: 'close', f: () => void): void }) => {
    socket.once('close', () => send({ upgradeClosed: ++upgradeClosed }));
  });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'release') for (const resolve of held.splice(0)) resolve();
    else if (m.cmd === 'ping') send({ pong: true });
    else if (m.cmd === 'exit') void server.close().then(() => process.exit(0));
  });
  send({ ready: server.port });
});
