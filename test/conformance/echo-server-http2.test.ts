/**
 * Conformance, suite as client over HTTP/2 (RFC 8441): the cases of echo-server.test.ts, as
 * raw masked frames on one extended-CONNECT stream per case, each on its own cleartext
 * HTTP/2 connection (http2.ts), to `wsframe echo-server --http2` (listen({ http2: true })
 * without TLS); sections 12 and 13 go to deflate-peer.ts echo-server --http2
 * (upgradeHttp2 on a node:http2 server). The same verdicts as over TCP, plus one check of
 * HTTP/2's own: the connection outlives the WebSocket. CONFORMANCE_FULL=1 adds the 16 MiB
 * and slowest cases.
 */
import test from 'ava';
import { http2ClientConnector } from './http2';
import { startDeflateEchoServer, startEchoServer } from './peers';
import { registerRole } from './suite';

registerRole(test, {
  peer: 'echo-server-http2',
  async setup() {
    const [server, deflating] = await Promise.all([startEchoServer(['--http2']), startDeflateEchoServer(['--http2'])]);
    return {
      connector: http2ClientConnector(server.port, deflating.port),
      teardown: async () => {
        await Promise.all([server.stop(), deflating.stop()]);
      }
    };
  }
});
