// Nim's isClientSocket argument of the read functions must match the socket's role (issue
// 26): it decides how our Pongs and Closes are masked and which end closes TCP first, so
// `readData(serverSocket, true)` used to change the connection quietly. Now it is a
// TypeError, thrown before anything is read; the matching value and no value still work.
import test from 'ava';
import { messages, readData, readFragment, recvFrame, sendPing, sendText } from '../../src';
import { pair, within } from '../helpers/socket-pair';

test('a value that contradicts the role is a TypeError before anything is read; the matching one works', async (t) => {
  const { client, server } = await pair(t);
  await sendText(client, 'first');
  t.throws(() => readData(server, true), { instanceOf: TypeError, message: /^readData\(ws, true\) on a server socket: isClientSocket must match the socket's role/ });
  t.throws(() => readFragment(server, true), { instanceOf: TypeError, message: /^readFragment\(ws, true\) on a server socket/ });
  t.throws(() => recvFrame(server, true), { instanceOf: TypeError, message: /^recvFrame\(ws, true\) on a server socket/ });
  t.throws(() => messages(server, true), { instanceOf: TypeError, message: /^messages\(ws, true\) on a server socket/ });
  t.throws(() => readData(client, false), { instanceOf: TypeError, message: /on a client socket/ });
  t.throws(() => readData(server, 'yes' as unknown as boolean), { instanceOf: TypeError, message: /isClientSocket must be true or false, not the string "yes"/ });
  // Nothing was taken: the message is still there for a read with the right value.
  t.is((await within(readData(server, false), 'the message')).data.toString(), 'first');
  // The Pong to a Ping is unmasked from a server, as its role says.
  void sendPing(client, undefined, 'p');
  t.is((await within(readData(server), 'the ping')).data.toString(), 'p');
  const pong = await within(recvFrame(client, true), 'the pong');
  t.false(pong.masked);
  t.is(pong.data.toString(), 'p');
});
