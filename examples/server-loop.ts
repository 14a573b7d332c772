// Roll your own server loop: listen() does the HTTP upgrade, you own each connection's
// read loop. readData answers pings and the close handshake for you and still shows them.
// Run: npx ts-node examples/server-loop.ts   (it starts the server, talks to it, and stops)
import { AsyncSocket, IOError, Opcode, ProtocolError, connect, decodeClosePayload, listen, readData, sendBinary, sendClose, sendText } from '../src';

async function serve(ws: AsyncSocket): Promise<void> {
  let count = 0;
  try {
    for (;;) {
      const { opcode, data } = await readData(ws);
      switch (opcode) {
        case Opcode.Text:
          await sendText(ws, `#${++count}: ${data.toString('utf8')}`);
          break;
        case Opcode.Binary:
          await sendBinary(ws, data);
          break;
        case Opcode.Ping: // the Pong is already sent
          break;
        case Opcode.Close: // the echo is already sent; the socket closes on its own
          console.log('server: client closed with', decodeClosePayload(data));
          return;
      }
    }
  } catch (err) {
    if (err instanceof ProtocolError) console.log('server: bad client, sent close', err.closeCode, err.code);
    else if (err instanceof IOError) console.log('server: connection lost:', err.reason);
    else throw err;
  }
}

async function main(): Promise<void> {
  const server = await listen({ host: '127.0.0.1', port: 0, maxMessageSize: 1 << 20 }, serve);
  console.log(`server: ws://127.0.0.1:${server.port}`);

  const ws = await connect(`ws://127.0.0.1:${server.port}/`);
  await sendText(ws, 'hello');
  await sendText(ws, 'again');
  console.log('client:', (await readData(ws)).data.toString(), '/', (await readData(ws)).data.toString());
  await sendClose(ws, 1000, 'done');
  const reply = await readData(ws); // the server's echo of our Close
  console.log('client: server echoed', decodeClosePayload(reply.data));
  await server.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
