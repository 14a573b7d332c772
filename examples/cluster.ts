// More than one core: node:cluster forks worker processes that each run listen() on the same
// port; the primary accepts the connections and hands them to the workers in turn. A
// connection lives in one worker, so a broadcast to every client needs the other workers too:
// here the primary relays it to all of them, as a pub/sub (Redis, NATS, …) would between
// machines. The primary also plays four clients, to show where they land.
// Run: npx ts-node examples/cluster.ts
import cluster from 'node:cluster';
import { once } from 'node:events';
import { Opcode, close, connect, listen, messages, readData, sendText, type AsyncSocket } from '../src';

const WORKERS = 2;
const CLIENTS = 4;

/** What a worker tells the primary, and what the primary tells a worker. */
type FromWorker = { type: 'listening'; port: number } | { type: 'publish'; text: string };
type ToWorker = { type: 'publish'; text: string } | { type: 'shutdown' };

async function worker(): Promise<void> {
  const id = cluster.worker!.id;
  // port 0 in a cluster: the first worker's listen picks a free port, and the others get the same one
  const server = await listen({ port: 0 }, async (ws) => {
    await sendText(ws, `worker ${id}`);
    // a message from one client goes to the primary, which sends it to every worker's clients
    for await (const m of messages(ws)) {
      if (m.opcode === Opcode.Text) process.send!({ type: 'publish', text: m.data.toString() } satisfies FromWorker);
    }
  });
  process.on('message', (msg: ToWorker) => {
    if (msg.type === 'publish') void server.broadcast(msg.text);
    // shutdown: every client gets 1001, then the worker leaves the cluster and exits
    else void server.close().then(() => cluster.worker!.disconnect());
  });
  process.send!({ type: 'listening', port: server.port } satisfies FromWorker);
}

async function primary(): Promise<void> {
  const workers = Array.from({ length: WORKERS }, () => cluster.fork());
  const ports = await Promise.all(
    workers.map(
      (w) =>
        new Promise<number>((resolve, reject) => {
          w.on('message', (msg: FromWorker) => {
            if (msg.type === 'listening') resolve(msg.port);
            // the pub/sub: what one worker publishes, every worker broadcasts
            else for (const each of workers) each.send({ type: 'publish', text: msg.text } satisfies ToWorker);
          });
          w.once('exit', (code) => reject(new Error(`worker exited with ${code} before listening`)));
        })
    )
  );
  console.log(`${WORKERS} workers listening on one port: ${new Set(ports).size === 1}`);

  const clients: AsyncSocket[] = [];
  const servedBy = new Map<string, number>();
  for (let i = 0; i < CLIENTS; i++) {
    const ws = await connect(`ws://127.0.0.1:${ports[0]}/`);
    const who = (await readData(ws)).data.toString();
    servedBy.set(who, (servedBy.get(who) ?? 0) + 1);
    clients.push(ws);
  }
  console.log(`${CLIENTS} clients served by ${servedBy.size} workers`);

  await sendText(clients[0]!, 'hello, everyone');
  const got = await Promise.all(clients.map(async (ws) => (await readData(ws)).data.toString()));
  console.log(`clients that got the broadcast: ${got.filter((text) => text === 'hello, everyone').length} of ${CLIENTS}`);

  // shutdown: each worker closes its clients with 1001 and exits
  const exited = workers.map((w) => once(w, 'exit'));
  for (const w of workers) w.send({ type: 'shutdown' } satisfies ToWorker);
  const codes = await Promise.all(
    clients.map(async (ws) => {
      for (;;) {
        const m = await readData(ws);
        if (m.opcode === Opcode.Close) return m.data.readUInt16BE(0);
      }
    })
  );
  console.log(`close codes the clients got: ${[...new Set(codes)].join(', ')}`);
  await Promise.all(clients.map((ws) => close(ws)));
  await Promise.all(exited);
  console.log('workers exited');
}

(cluster.isPrimary ? primary() : worker()).catch((err) => {
  console.error(err);
  process.exitCode = 1;
  if (cluster.isPrimary) for (const w of Object.values(cluster.workers ?? {})) w?.kill();
});
