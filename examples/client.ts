// A client: connect, talk, measure a ping, close with a result. It starts a local echo
// server first so it runs on its own; point `url` at your server instead.
// Run: npx ts-node examples/client.ts
import { Opcode, close, connect, listen, messages, ping, readData, sendBinary, sendText } from '../src';

async function main(): Promise<void> {
  const echo = await listen({ port: 0 }, async (ws) => {
    for await (const m of messages(ws)) {
      if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString('utf8'));
      else await sendBinary(ws, m.data);
    }
  });
  const url = `ws://127.0.0.1:${echo.port}/`;

  const ws = await connect(url, { timeout: 5000, maxMessageSize: 1 << 20 });
  await sendText(ws, 'héllo');
  const text = await readData(ws);
  console.log('text:', text.opcode === Opcode.Text, text.data.toString('utf8'));

  await sendBinary(ws, Buffer.from([1, 2, 3]));
  const bin = await readData(ws);
  console.log('binary:', bin.opcode === Opcode.Binary, [...bin.data]);

  // ping() resolves when its Pong is read, so something must be reading meanwhile.
  const reader = readData(ws);
  const rtt = await ping(ws, { timeout: 2000 });
  console.log('ping answered:', rtt >= 0, (await reader).opcode === Opcode.Pong);

  console.log('closed:', await close(ws, 1000, 'bye'));
  await echo.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
