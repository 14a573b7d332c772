/**
 * Conformance, suite as server: raw unmasked frames to `wsframe echo-client`, one client
 * process per case (echo-client connects once and exits after the close).
 * CONFORMANCE_FULL=1 adds the 16 MiB and slowest cases, and the interior cases of the UTF-8
 * byte-sequence families (see isFamilyInterior).
 */
import test from 'ava';
import { isFamilyInterior } from './cases';
import { EchoClientHarness, transpileCli } from './peers';
import { registerRole } from './suite';

registerRole(test, {
  peer: 'echo-client',
  skipByDefault: isFamilyInterior,
  async setup() {
    const { cli, cleanup } = transpileCli();
    const harness = new EchoClientHarness(cli);
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
