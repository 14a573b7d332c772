/**
 * Full handshakes with `ws` (8.x) as the peer: a `ws` client against our `upgrade()` server
 * and against `listen()`; our `connect()` against a `ws` WebSocketServer (handleProtocols).
 * Subprotocol negotiation, text, binary, fragmented, ping, and close with code and reason
 * initiated by either side.
 */
import test, { ExecutionContext } from 'ava';
import net from 'node:net';
import { RawData, WebSocket } from 'ws';
import { AsyncSocket, close, connect, listen, Opcode, readData, sendBinary, sendFragmented, sendPing, sendText, whenClosed } from '../../src';
import { within } from '../helpers/socket-pair';
import { Queue, echo, upgradeServer } from './support';
import { listeningWsServer } from '../helpers/ws-server';

const toBuffer = (d: RawData): Buffer => (Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d as ArrayBuffer));

/** A `ws` client with its events queued. */
class WsPeer {
  readonly ws: WebSocket;
  readonly messages = new Queue<{ data: Buffer; binary: boolean }>();
  readonly pongs = new Queue<string>();
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(t: ExecutionContext, url: string, protocols: string[]) {
    this.ws = new WebSocket(url, protocols);
    t.teardown(() => this.ws.terminate());
    this.ws.on('message', (data, binary) => this.messages.push({ data: toBuffer(data), binary }));
    this.ws.on('pong', (data) => this.pongs.push(data.toString()));
    this.opened = within(
      new Promise((resolve, reject) => {
        this.ws.once('open', () => resolve());
        this.ws.once('error', reject);
      }),
      'the ws client to open'
    );
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  async exchange(t: ExecutionContext): Promise<void> {
    this.ws.send('hello ✓');
    let m = await this.messages.next('text echo');
    t.deepEqual([m.binary, m.data.toString()], [false, 'hello ✓']);
    this.ws.send(Buffer.from([9, 8, 7]));
    m = await this.messages.next('binary echo');
    t.deepEqual([m.binary, ...m.data], [true, 9, 8, 7]);
    this.ws.send('frag', { fin: false });
    this.ws.ping('mid');
    this.ws.send('ment', { fin: true });
    t.is(await this.pongs.next('pong'), 'mid');
    m = await this.messages.next('fragmented echo');
    t.deepEqual([m.binary, m.data.toString()], [false, 'fragment']);
  }
}

for (const kind of ['upgrade()', 'listen()'] as const) {
  test(`ws client → our ${kind} server: protocol, messages, client-initiated close with code and reason`, async (t) => {
    const serverSockets = new Queue<AsyncSocket>();
    let port: number;
    if (kind === 'upgrade()') {
      const srv = await upgradeServer(t, { protocols: ['b', 'a'] });
      port = srv.port;
      void srv.nextSocket().then((ws) => {
        serverSockets.push(ws);
        return echo(ws);
      });
    } else {
      const server = await listen({ protocols: ['b', 'a'] }, async (ws) => {
        serverSockets.push(ws);
        await echo(ws);
      });
      t.teardown(() => server.close());
      port = server.port;
    }
    const peer = new WsPeer(t, `ws://127.0.0.1:${port}/`, ['a', 'b']);
    await peer.opened;
    t.is(peer.ws.protocol, 'b', "the server's preference");
    const server = await serverSockets.next();
    t.is(server.protocol, 'b');
    await peer.exchange(t);
    peer.ws.close(4001, 'bye');
    t.deepEqual(await within(peer.closed, 'ws close'), { code: 4001, reason: 'bye' }, 'code and reason echoed');
    await within(whenClosed(server), 'the server socket to close');
    t.deepEqual(server.peerClose, { code: 4001, reason: 'bye' });
  });
}

test('our upgrade() server initiates the close; fragmented and ping from our side', async (t) => {
  const srv = await upgradeServer(t, { selectProtocol: (offered) => offered[0] });
  const peer = new WsPeer(t, `ws://127.0.0.1:${srv.port}/`, ['first', 'second']);
  const server = await srv.nextSocket();
  await peer.opened;
  t.is(peer.ws.protocol, 'first');
  await sendFragmented(server, Opcode.Text, 'in four parts!', 4);
  t.is((await peer.messages.next()).data.toString(), 'in four parts!');
  const pong = within(readData(server), 'pong');
  await sendPing(server, undefined, 'srv-ping');
  const p = await pong;
  t.deepEqual([p.opcode, p.data.toString()], [Opcode.Pong, 'srv-ping']);
  const result = await within(close(server, 4002, 'server bye'), 'close');
  t.deepEqual(result, { code: 4002, reason: 'server bye', clean: true });
  t.deepEqual(await within(peer.closed, 'ws close'), { code: 4002, reason: 'server bye' });
});

async function wsServer(t: ExecutionContext) {
  const wss = await listeningWsServer(t, { handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false) });
  const conns = new Queue<{ sock: WebSocket; closed: Promise<[number, string]> }>();
  wss.on('connection', (sock) => {
    const closed = new Promise<[number, string]>((resolve) => sock.once('close', (c, r) => resolve([c, r.toString()])));
    sock.on('message', (data, isBinary) => {
      const buf = toBuffer(data);
      if (!isBinary && buf.toString() === 'please close') return sock.close(4003, 'server says bye');
      sock.send(buf, { binary: isBinary });
    });
    conns.push({ sock, closed });
  });
  return { url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`, conns };
}

async function ourExchange(t: ExecutionContext, ws: AsyncSocket): Promise<void> {
  await sendText(ws, 'héllo');
  t.deepEqual(await within(readData(ws), 'text'), { opcode: Opcode.Text, data: Buffer.from('héllo') });
  await sendBinary(ws, Buffer.from([1, 2, 3]));
  t.deepEqual(await within(readData(ws), 'binary'), { opcode: Opcode.Binary, data: Buffer.from([1, 2, 3]) });
  await sendFragmented(ws, Opcode.Binary, Buffer.alloc(1000, 7), 100);
  const f = await within(readData(ws), 'fragmented');
  t.is(f.opcode, Opcode.Binary);
  t.true(f.data.equals(Buffer.alloc(1000, 7)));
  const token = await sendPing(ws, undefined, 'tok');
  const pong = await within(readData(ws), 'pong');
  t.deepEqual([pong.opcode, pong.data.toString()], [Opcode.Pong, token.toString()]);
}

test('our connect() → ws server (handleProtocols): messages, we close with code and reason', async (t) => {
  const { url, conns } = await wsServer(t);
  const ws = await within(connect(url, { protocols: ['chat.v1', 'chat.v2'] }), 'connect');
  t.teardown(() => ws.destroy());
  t.is(ws.protocol, 'chat.v2');
  const conn = await conns.next();
  t.is(conn.sock.protocol, 'chat.v2');
  await ourExchange(t, ws);
  const result = await within(close(ws, 4001, 'client bye'), 'close');
  t.deepEqual(result, { code: 4001, reason: 'client bye', clean: true });
  t.deepEqual(await within(conn.closed, 'ws server close'), [4001, 'client bye']);
});

test('our connect() → ws server: the server closes, we echo and the TCP connection ends', async (t) => {
  const { url, conns } = await wsServer(t);
  const ws = await within(connect(url, { protocols: 'other' }), 'connect');
  t.teardown(() => ws.destroy());
  t.is(ws.protocol, '', 'handleProtocols chose none');
  const conn = await conns.next();
  await sendText(ws, 'please close');
  const m = await within(readData(ws), 'the Close');
  t.is(m.opcode, Opcode.Close);
  t.deepEqual(ws.peerClose, { code: 4003, reason: 'server says bye' });
  t.deepEqual(await within(conn.closed, 'ws server close'), [4003, 'server says bye']);
  await within(whenClosed(ws), 'our socket to close');
  t.true(ws.closeSent);
});
