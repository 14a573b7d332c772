/**
 * The suite has teeth: against a deliberately broken echo server it must return FAILED on
 * the cases that probe each bug, and OK on cases the bug does not touch (so it does not
 * simply fail everything).
 */
import test, { type ExecutionContext } from 'ava';
import { allCases } from './cases';
import { Http2Breakage, http2ClientConnector, startBrokenHttp2EchoServer } from './http2';
import { Breakage, DeflateBreakage, EchoClientHarness, clientConnector, launchBrokenEchoClient, startBrokenDeflateEchoServer, startBrokenEchoServer } from './peers';
import { details } from './report';
import { runCases } from './run';
import type { CaseResult } from './types';

function pick(ids: string[]) {
  const cases = allCases().filter((c) => ids.includes(c.id));
  if (cases.length !== ids.length) throw new Error(`unknown case in ${ids.join(', ')}`);
  return cases;
}

const variants: Array<{ name: string; breakage: Breakage; failed: string[]; ok: string[] }> = [
  {
    name: 'never validates UTF-8',
    breakage: { noUtf8Check: true },
    failed: ['6.3.1', '6.3.2', '6.6.1', '6.8.1', '6.12.1', '6.17.1', '6.20.1', '6.21.1', '6.4.1', '6.26.2', '6.27.3'],
    ok: ['1.1.2', '1.2.8', '2.10', '6.2.4', '6.5.4', '6.22.1', '6.24.5']
  },
  {
    name: 'answers pings with empty pongs',
    breakage: { emptyPongs: true },
    failed: ['2.2', '2.3', '2.4', '2.6', '2.10', '5.6', '5.19'],
    ok: ['2.1', '2.7', '1.1.1', '6.3.1']
  },
  {
    name: 'echoes after protocol violations (RSV bits, reserved opcodes)',
    breakage: { ignoreViolations: true },
    failed: ['3.1', '3.2', '3.5', '4.1.1', '4.1.3', '4.2.2'],
    ok: ['1.1.3', '5.3', '7.1.1']
  }
];

// Each case in `failed` must be FAILED (it catches the bug) and each in `ok` must be OK.
function checkVerdicts(t: ExecutionContext, results: CaseResult[], v: { failed: string[]; ok: string[] }): void {
  for (const line of details(results)) t.log(line);
  const verdict = (id: string) => results.find((r) => r.id === id)!.verdict;
  t.deepEqual(
    v.failed.filter((id) => verdict(id) !== 'FAILED'),
    [],
    'cases that must catch the bug'
  );
  t.deepEqual(
    v.ok.filter((id) => verdict(id) !== 'OK'),
    [],
    'cases the bug does not touch'
  );
}

for (const v of variants) {
  test(`a broken echo server that ${v.name} gets FAILED where it should`, async (t) => {
    const server = await startBrokenEchoServer(v.breakage);
    t.teardown(() => server.close());
    const results = await runCases(pick([...v.failed, ...v.ok]), clientConnector(server.port), 'broken-echo-server');
    checkVerdicts(t, results, v);
  });
}

// Sections 12 and 13 (rows 5: 60 messages of 4 KiB JSON, and 2: 500 of 64 B). Each case
// listed under `failed` has a way to catch the bug; the `ok` ones run where it cannot show.
const deflateVariants: Array<{ name: string; breakage: DeflateBreakage; failed: string[]; ok: string[] }> = [
  {
    name: 'keeps its compression context although it agreed server_no_context_takeover',
    breakage: { keepsContext: true },
    failed: ['13.1.5', '13.3.5', '13.8.5'],
    ok: ['12.1.5', '13.2.5']
  },
  {
    name: 'compresses with a 32 KiB window although it agreed server_max_window_bits=9',
    breakage: { fullWindow: true },
    failed: ['13.4.5', '13.8.5'],
    ok: ['13.5.5', '12.1.5']
  },
  {
    name: 'inflates each message with a fresh context although context takeover was agreed',
    breakage: { dropsClientContext: true },
    failed: ['12.1.2', '12.1.5', '12.6.2'],
    ok: ['13.2.5', '13.3.5', '12.6.1']
  },
  {
    name: 'sets RSV1 on the continuation frame of a compressed echo',
    breakage: { rsv1OnEveryFrame: true },
    failed: ['12.1.5', '13.1.5'],
    ok: ['12.1.1', '12.6.1']
  },
  {
    name: 'never compresses an echo',
    breakage: { neverCompresses: true },
    failed: ['12.1.5', '12.2.10'],
    ok: ['12.1.1', '12.6.3']
  }
];

for (const v of deflateVariants) {
  test(`a broken permessage-deflate echo server that ${v.name} gets FAILED where it should`, async (t) => {
    const server = await startBrokenDeflateEchoServer(v.breakage);
    t.teardown(() => server.close());
    // Cases without permessage-deflate never reach it: port 1 refuses them.
    const results = await runCases(pick([...v.failed, ...v.ok]), clientConnector(1, server.port), 'broken-deflate-echo-server');
    checkVerdicts(t, results, v);
  });
}

const clientVariants: Array<{ name: string; breakage: Breakage & { unmasked?: boolean }; failed: string[]; ok: string[] }> = [
  {
    name: 'forgets to mask its frames',
    breakage: { unmasked: true },
    failed: ['1.1.2', '2.2', '5.3', '7.1.1'],
    ok: []
  },
  {
    name: 'never validates UTF-8',
    breakage: { noUtf8Check: true },
    failed: ['6.3.1', '6.6.1', '6.20.1', '6.4.2'],
    ok: ['1.1.2', '2.2', '6.2.3', '6.22.34']
  }
];

for (const v of clientVariants) {
  test(`a broken echo client that ${v.name} gets FAILED where it should`, async (t) => {
    // The harness never spawns the CLI here, so no transpiled copy is needed.
    const harness = new EchoClientHarness({ cli: '', deflatePeer: '' });
    await harness.listen();
    t.teardown(() => harness.close());
    const results = await runCases(pick([...v.failed, ...v.ok]), harness.connector(launchBrokenEchoClient(v.breakage)), 'broken-echo-client');
    checkVerdicts(t, results, v);
  });
}

// Over HTTP/2 (http2.ts): the broken echo server's loop on an extended-CONNECT stream. The
// first variant has no bug, so the cases it runs must come out OK; the stream-ending bugs
// fail every case, however it went before the close.
const http2Variants: Array<{ name: string; breakage: Breakage; ending: Http2Breakage; failed: string[]; ok: string[] }> = [
  {
    name: 'the same server with none of these bugs',
    breakage: {},
    ending: {},
    failed: [],
    ok: ['1.1.2', '2.2', '3.1', '5.3', '6.3.1', '7.1.1']
  },
  {
    name: 'never validates UTF-8',
    breakage: { noUtf8Check: true },
    ending: {},
    failed: ['6.3.1', '6.4.1'],
    ok: ['1.1.2', '6.2.4']
  },
  {
    name: 'closes the whole HTTP/2 connection (GOAWAY) when the WebSocket ends',
    breakage: {},
    ending: { closesConnection: true },
    failed: ['1.1.2', '3.1', '7.1.1'],
    ok: []
  },
  {
    name: 'never ends the stream after its Close',
    breakage: {},
    ending: { neverEndsStream: true },
    failed: ['1.1.2', '3.1', '7.1.1'],
    ok: []
  }
];

for (const v of http2Variants) {
  const title = v.failed.length === 0 ? `${v.name} over HTTP/2 gets OK` : `a broken echo server over HTTP/2 that ${v.name} gets FAILED where it should`;
  test(title, async (t) => {
    const server = await startBrokenHttp2EchoServer(v.breakage, v.ending);
    t.teardown(() => server.close());
    const results = await runCases(pick([...v.failed, ...v.ok]), http2ClientConnector(server.port), 'broken-echo-server-http2');
    checkVerdicts(t, results, v);
  });
}
