// Add WebSockets to an existing node:http server, with authentication at upgrade time:
// requests without the right bearer token get a real 401 response, never a WebSocket.
// Run: npx ts-node examples/http-auth.ts
import http from 'node:http';
import { HandshakeError, Opcode, close, connect, messages, readData, rejectUpgrade, sendText, upgrade } from '../src';

const TOKEN = 'secret-token';

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('plain HTTP still works here\n');
});

server.on('upgrade', async (req, socket, head) => {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    rejectUpgrade(socket, 401, { 'WWW-Authenticate': 'Bearer' }, 'a bearer token is required\n');
    return;
  }
  try {
    const ws = await upgrade(req, socket, head, { protocols: ['echo.v1'], maxMessageSize: 64 * 1024 });
    for await (const { opcode, data } of messages(ws)) {
      if (opcode === Opcode.Text) await sendText(ws, `echo: ${data.toString('utf8')}`);
    }
  } catch (err) {
    // A refused handshake (already answered with its HTTP status) or a broken connection.
    console.log('server:', (err as Error).name, (err as Error).message);
  }
});

async function main(): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const url = `ws://127.0.0.1:${port}/`;

  try {
    await connect(url);
  } catch (err) {
    if (err instanceof HandshakeError) console.log('client without token: refused with status', err.status);
  }

  const ws = await connect(url, { headers: { Authorization: `Bearer ${TOKEN}` }, protocols: ['echo.v1'] });
  console.log('client with token: connected, protocol', ws.protocol);
  await sendText(ws, 'hi');
  console.log('client:', (await readData(ws)).data.toString());
  console.log('client: closed', await close(ws, 1000, 'bye'));
  server.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
