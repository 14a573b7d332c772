/**
 * Conformance, suite as client: raw masked frames to `wsframe echo-server` (started once
 * through ts-node), one connection per case. CONFORMANCE_FULL=1 adds the 16 MiB and slowest cases.
 */
import test from 'ava';
import { clientConnector, startEchoServer } from './peers';
import { registerRole } from './suite';

registerRole(test, {
  peer: 'echo-server',
  async setup() {
    const server = await startEchoServer();
    return { connector: clientConnector(server.port), teardown: () => server.stop() };
  }
});
