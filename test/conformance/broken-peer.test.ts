/**
 * The suite has teeth: against a deliberately broken echo server it must return FAILED on
 * the cases that probe each bug, and OK on cases the bug does not touch (so it does not
 * simply fail everything).
 */
import test from 'ava';
import { allCases } from './cases';
import { Breakage, EchoClientHarness, clientConnector, launchBrokenEchoClient, startBrokenEchoServer } from './peers';
import { details } from './report';
import { runCases } from './run';

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

for (const v of variants) {
  test(`a broken echo server that ${v.name} gets FAILED where it should`, async (t) => {
    const server = await startBrokenEchoServer(v.breakage);
    t.teardown(() => server.close());
    const results = await runCases(pick([...v.failed, ...v.ok]), clientConnector(server.port), 'broken-echo-server');
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
    const harness = new EchoClientHarness('');
    await harness.listen();
    t.teardown(() => harness.close());
    const results = await runCases(pick([...v.failed, ...v.ok]), harness.connector(launchBrokenEchoClient(v.breakage)), 'broken-echo-client');
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
  });
}
