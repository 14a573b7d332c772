// The connection's state machine on its own (src/core/state.ts): no socket, only transitions.
import test from 'ava';
import { CloseAnswer, ConnectionPhase, ConnectionState } from '../../src/core/state';

const info = { code: 1000, reason: 'bye' };

function allowed(s: ConnectionState): { data: boolean; frame: boolean; read: boolean; pong: boolean } {
  return { data: s.canSendData, frame: s.canSendFrame, read: s.canRead, pong: s.answersPings };
}

test('a new connection is OPEN: everything may be sent and read', (t) => {
  const s = new ConnectionState();
  t.is(s.phase, ConnectionPhase.OPEN);
  t.is(s.closer, null);
  t.deepEqual(allowed(s), { data: true, frame: true, read: true, pong: true });
  t.false(s.clean);
});

test('we close first: queued, sent, then the peer echoes: CLOSING (local) then CLOSED, clean', (t) => {
  const s = new ConnectionState();
  t.true(s.queueClose());
  t.is(s.phase, ConnectionPhase.CLOSING);
  t.is(s.closer, 'local');
  // Queued behind data: messages queued before it may finish, no new one may start (§5.5.1).
  t.deepEqual(allowed(s), { data: false, frame: true, read: true, pong: true });
  t.false(s.queueClose(), 'a second Close may not be queued');
  t.true(s.sendClose());
  t.deepEqual(allowed(s), { data: false, frame: false, read: true, pong: false });
  t.false(s.sendClose(), 'nor written twice');
  t.is(s.receiveClose(info), CloseAnswer.FINISH);
  t.is(s.phase, ConnectionPhase.CLOSED);
  t.deepEqual(allowed(s), { data: false, frame: false, read: false, pong: false });
  t.deepEqual(s.peerClose, info);
  t.true(s.clean);
  t.is(s.closer, 'local');
});

test('the peer closes first: we echo at once, and the handshake is complete', (t) => {
  const s = new ConnectionState();
  t.is(s.receiveClose(info), CloseAnswer.ECHO);
  t.is(s.closer, 'remote');
  t.true(s.closeQueued && s.closeSent && s.closeReceived);
  t.is(s.phase, ConnectionPhase.CLOSED);
  t.true(s.clean);
  t.false(s.queueClose(), 'our own Close may not follow the echo');
});

test('the peer closes while our Close waits behind data: no more reads, wait for ours', (t) => {
  const s = new ConnectionState();
  s.queueClose();
  t.is(s.receiveClose(info), CloseAnswer.WAIT_FOR_OURS);
  t.is(s.phase, ConnectionPhase.CLOSING);
  t.is(s.closer, 'local');
  t.deepEqual(allowed(s), { data: false, frame: true, read: false, pong: true });
  t.false(s.clean);
  t.true(s.sendClose());
  t.is(s.phase, ConnectionPhase.CLOSED);
  t.true(s.clean);
});

test('failing the connection sends one Close, and none after one went out', (t) => {
  const open = new ConnectionState();
  t.true(open.fail(), 'an open connection writes its failure Close');
  t.is(open.phase, ConnectionPhase.CLOSED);
  t.deepEqual(allowed(open), { data: false, frame: false, read: false, pong: false });
  t.false(open.clean);
  t.false(open.sendClose(), 'a queued Close may not follow the failure Close');

  const sent = new ConnectionState();
  sent.queueClose();
  sent.sendClose();
  t.false(sent.fail(), 'our Close went out already');
  t.is(sent.phase, ConnectionPhase.CLOSED);

  const queued = new ConnectionState();
  queued.queueClose();
  t.true(queued.fail(), 'a Close that only waits in the queue was not sent: the failure Close goes first');
});

test('the transport closing ends everything; bytes buffered before may still be read', (t) => {
  const s = new ConnectionState();
  s.transportClosed();
  t.is(s.phase, ConnectionPhase.CLOSED);
  t.false(s.canSendData);
  t.false(s.canSendFrame);
  t.true(s.canRead, 'frames that arrived before the close are still read');
  t.false(s.fail(), 'nothing can be written on a closed transport');
  t.false(s.clean);
});

test("result(): 1006 and not clean before the peer's Close; its code and reason, clean once both Closes went", (t) => {
  const s = new ConnectionState();
  t.deepEqual(s.result(), { code: 1006, reason: '', clean: false });
  s.queueClose();
  s.sendClose();
  t.deepEqual(s.result(), { code: 1006, reason: '', clean: false }, 'ours went, no answer yet');
  s.receiveClose(info);
  t.deepEqual(s.result(), { code: 1000, reason: 'bye', clean: true });
  const echoed = new ConnectionState();
  echoed.receiveClose({ code: 1005, reason: '' });
  t.deepEqual(echoed.result(), { code: 1005, reason: '', clean: true }, 'the peer closed first and we echoed');
});
