// A broadcast chat on the standalone server: server.clients is the set of open connections
// and server.broadcast() sends to all of them. A client that stops reading does not hold up
// the others: past maxBackpressure (1 MiB) unsent, it is closed with 1008.
// Run: npx ts-node examples/chat.ts
import { AsyncSocket, Opcode, close, connect, listen, messages, readData, sendText } from '../src';

async function main(): Promise<void> {
  const server = await listen({ port: 0, keepalive: { interval: 30_000, timeout: 10_000 } }, async (ws) => {
    await server.broadcast(`* someone joined (${server.clients.size} here)`);
    for await (const { opcode, data } of messages(ws)) {
      if (opcode === Opcode.Text) await server.broadcast(data.toString('utf8'));
    }
  });
  const url = `ws://127.0.0.1:${server.port}/chat`;

  const alice = await connect(url);
  console.log('alice got:', (await readData(alice)).data.toString());
  const bob = await connect(url);
  const next = async (who: string, ws: AsyncSocket): Promise<void> =>
    console.log(`${who} got:`, (await readData(ws)).data.toString());
  await next('alice', alice);
  await next('bob', bob);

  await sendText(alice, 'alice: hello bob');
  await next('alice', alice);
  await next('bob', bob);

  await Promise.all([close(alice), close(bob)]);
  await server.close();
  console.log('chat closed, clients left:', server.clients.size);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
