// A tour of the frame API over a loopback TCP connection: a server loop that echoes
// messages, and a client that talks to it. (The HTTP upgrade handshake comes in front of
// this in real use; here both ends agree to speak WebSocket frames from the first byte.)
// Run: npx ts-node examples/frames.ts
import net from 'node:net';
import {
  AsyncSocket,
  Opcode,
  ProtocolError,
  decodeClosePayload,
  makeFrame,
  messages,
  readData,
  readFragment,
  recvFrame,
  sendBinary,
  sendChain,
  sendClose,
  sendFragmented,
  sendPing,
  sendPong,
  sendText
} from '../src';

// The server loop: one readData per message; pings and the close handshake are answered
// inside readData, and still shown to us.
async function serve(ws: AsyncSocket): Promise<void> {
  try {
    for (;;) {
      const { opcode, data } = await readData(ws);
      if (opcode === Opcode.Text) await sendText(ws, data.toString('utf8'));
      else if (opcode === Opcode.Binary) await sendBinary(ws, data);
      else if (opcode === Opcode.Close) return console.log('server: peer closed with', decodeClosePayload(data));
    }
  } catch (err) {
    if (err instanceof ProtocolError) console.log('server: failed the connection with', err.closeCode, err.code);
    else throw err;
  }
}

async function main(): Promise<void> {
  const server = net.createServer((socket) => void serve(new AsyncSocket(socket, { role: 'server' })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const ws = new AsyncSocket(socket, { role: 'client' }); // clients mask every frame

  // makeFrame builds raw frame bytes (RFC 6455 §5.7's first example):
  console.log('makeFrame:', makeFrame(Opcode.Text, 'Hello', false).toString('hex'));

  await sendText(ws, 'hello');
  const echoed = await readData(ws);
  console.log('text echo:', echoed.opcode === Opcode.Text, echoed.data.toString());

  // A large message sent in 16 KiB frames, read back piece by piece.
  await sendFragmented(ws, Opcode.Binary, Buffer.alloc(100_000, 1), 16 * 1024);
  let total = 0;
  for (;;) {
    const part = await readFragment(ws);
    total += part.data.length;
    if (part.fin) break;
  }
  console.log('binary echo bytes:', total);

  const token = await sendPing(ws); // a random token; readData returns the Pong
  const pong = await readData(ws);
  console.log('pong matches ping:', pong.opcode === Opcode.Pong && pong.data.equals(token));

  // A message streamed as three frames; the server echoes it in one, read here as a raw frame.
  await sendChain(ws, Opcode.Text, ['stream', 'ed ', 'text']);
  const frame = await recvFrame(ws);
  console.log('raw frame:', frame.fin, frame.opcode === Opcode.Text, frame.data.toString());

  await sendPong(ws, 'heartbeat'); // an unsolicited pong: the server's readData returns it, unanswered

  await sendClose(ws, 1000, 'bye');
  // messages() yields whole data messages and ends after the close handshake.
  for await (const m of messages(ws)) console.log('unexpected message', m);
  console.log('client: closed cleanly');
  server.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
