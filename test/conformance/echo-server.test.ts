/**
 * Conformance, suite as client: raw masked frames to `wsframe echo-server` (started once
 * through ts-node), one connection per case; sections 12 and 13 go to the same echo server
 * with permessage-deflate (deflate-peer.ts). CONFORMANCE_FULL=1 adds the 16 MiB and
 * slowest cases.
 */
import test from 'ava';
import { clientConnector, startDeflateEchoServer, startEchoServer } from './peers';
import { registerRole } from './suite';

registerRole(test, {
  peer: 'echo-server',
  async setup() {
    const [server, deflating] = await Promise.all([startEchoServer(), startDeflateEchoServer()]);
    return {
      connector: clientConnector(server.port, deflating.port),
      teardown: async () => {
        await Promise.all([server.stop(), deflating.stop()]);
      }
    };
  }
});
