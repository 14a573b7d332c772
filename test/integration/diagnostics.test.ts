/**
 * Connection events on node:diagnostics_channel: open, close (code, clean) and
 * protocol-error, filtered by socket since subscriptions are process-wide.
 */
import test from 'ava';
import diagnosticsChannel from 'node:diagnostics_channel';
import { AsyncSocket, CHANNELS, makeFrame, Opcode, ProtocolError, readData, sendClose } from '../../src';
import { pair, rawPair, until, within } from '../helpers/socket-pair';

interface Event {
  channel: string;
  message: { ws?: AsyncSocket; code?: number; reason?: string; clean?: boolean; error?: ProtocolError };
}

function record(t: { teardown(fn: () => void): void }): Event[] {
  const events: Event[] = [];
  for (const channel of Object.values(CHANNELS)) {
    const listener = (message: unknown): void => void events.push({ channel, message: message as Event['message'] });
    diagnosticsChannel.subscribe(channel, listener);
    t.teardown(() => diagnosticsChannel.unsubscribe(channel, listener));
  }
  return events;
}

test.serial('open and a clean close are published with the peer code', async (t) => {
  const events = record(t);
  const p = await pair(t);
  const mine = (): Event[] => events.filter((e) => e.message.ws === p.client || e.message.ws === p.server);
  t.deepEqual(
    mine().map((e) => e.channel),
    [CHANNELS.open, CHANNELS.open]
  );
  await sendClose(p.client, 4000, 'bye');
  t.is((await readData(p.server)).opcode, Opcode.Close);
  t.is((await readData(p.client)).opcode, Opcode.Close);
  await until(() => mine().filter((e) => e.channel === CHANNELS.close).length === 2, 'two close events');
  const client = mine().find((e) => e.channel === CHANNELS.close && e.message.ws === p.client)!;
  const server = mine().find((e) => e.channel === CHANNELS.close && e.message.ws === p.server)!;
  t.like(client.message, { code: 4000, reason: 'bye', clean: true }); // the echo carried both
  t.like(server.message, { code: 4000, reason: 'bye', clean: true });
});

test.serial('a protocol error is published with its close code, then an unclean close', async (t) => {
  const events = record(t);
  const { ws, raw } = await rawPair(t, 'server', { closeTimeout: 200 });
  // An unmasked frame to a server: 1002.
  raw.write(makeFrame(Opcode.Text, 'x', false));
  await t.throwsAsync(within(readData(ws), 'the failure'), { instanceOf: ProtocolError });
  const mine = (): Event[] => events.filter((e) => e.message.ws === ws);
  const failure = mine().find((e) => e.channel === CHANNELS.protocolError)!;
  t.is(failure.message.error!.closeCode, 1002);
  t.is(failure.message.error!.code, 'WS_ERR_EXPECTED_MASK');
  raw.end();
  await until(() => mine().some((e) => e.channel === CHANNELS.close), 'the close event');
  t.like(mine().find((e) => e.channel === CHANNELS.close)!.message, { code: 1006, clean: false });
});

test.serial('nothing is published without subscribers (hasSubscribers is false)', (t) => {
  for (const name of Object.values(CHANNELS)) t.false(diagnosticsChannel.channel(name).hasSubscribers);
});

test.serial('handshake rejections are published on both sides with their status', async (t) => {
  const { listen } = await import('../../src/server/listen');
  const { connect } = await import('../../src/handshake/client');
  const events = record(t);
  const server = await listen({ port: 0, verify: () => 401 }, () => undefined);
  t.teardown(() => server.close());
  await t.throwsAsync(connect(`ws://127.0.0.1:${server.port}/`));
  const rejected = events.filter((e) => e.channel === CHANNELS.handshakeRejected).map((e) => e.message as Record<string, unknown>);
  t.like(rejected.find((m) => m.side === 'server'), { side: 'server', status: 401 });
  t.like(rejected.find((m) => m.side === 'client'), { side: 'client', status: 401 });
});

test.serial('the keepalive option of connect() and listen() pings on its interval', async (t) => {
  const { listen } = await import('../../src/server/listen');
  const { connect } = await import('../../src/handshake/client');
  let serverPings = 0;
  const server = await listen({ port: 0, keepalive: { interval: 40, timeout: 1000 } }, async (ws) => {
    for (;;) {
      const m = await readData(ws);
      if (m.opcode === Opcode.Ping) serverPings++;
      if (m.opcode === Opcode.Close) return;
    }
  });
  t.teardown(() => server.close());
  const ws = await connect(`ws://127.0.0.1:${server.port}/`, { keepalive: { interval: 40, timeout: 1000 } });
  let clientPings = 0;
  const reading = (async () => {
    for (;;) {
      const m = await readData(ws);
      if (m.opcode === Opcode.Ping) clientPings++;
      if (m.opcode === Opcode.Close) return;
    }
  })();
  await until(() => serverPings >= 3 && clientPings >= 3, 'three pings each way');
  await sendClose(ws, 1000);
  await within(reading, 'the close');
  t.pass();
});
