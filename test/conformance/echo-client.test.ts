/**
 * Conformance, suite as server: raw unmasked frames to `wsframe echo-client`, one client
 * process per case (echo-client connects once and exits after the close); sections 12 and
 * 13 start deflate-peer.ts's echo-client, which offers permessage-deflate.
 * CONFORMANCE_FULL=1 adds the 16 MiB and slowest cases, and the interior cases of the UTF-8
 * byte-sequence families (see isFamilyInterior).
 */
import test from 'ava';
import { isFamilyInterior } from './cases';
import { EchoClientHarness, transpilePrograms } from './peers';
import { registerRole } from './suite';

registerRole(test, {
  peer: 'echo-client',
  skipByDefault: isFamilyInterior,
  async setup() {
    const { cleanup, ...programs } = transpilePrograms();
    const harness = new EchoClientHarness(programs);
    await harness.listen();
    return {
      connector: harness.connector(),
      async teardown() {
        await harness.close();
        cleanup();
      }
    };
  }
});
