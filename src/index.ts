/**
 * wsframe: RFC 6455 WebSocket frames and messages for Node.js with async/await, in the
 * style of Nim's websocket.nim.
 * @module
 */
export { Opcode, CloseCode, GUID, MAX_CONTROL_PAYLOAD, MAX_HEADER_SIZE } from './core/constants';
export {
  WebSocketError,
  ProtocolError,
  InvalidUtf8Error,
  PayloadTooBigError,
  IOError,
  HandshakeError,
  ConcurrencyError,
  REFUSAL_BODY_MAX
} from './core/errors';
export type { ProtocolErrorCode, IOErrorReason } from './core/errors';
export { applyMask, generateMaskingKey, maskBackend } from './core/mask';
export { isValidUtf8, Utf8Validator } from './core/utf8';
export { makeFrame, decodeHeader, validateHeader } from './core/frame';
export type { Frame, FrameHeader, HeaderRules } from './core/frame';
export { encodeClosePayload, decodeClosePayload, isValidCloseCode } from './core/close';
export type { CloseInfo } from './core/close';
export { MessageAssembler } from './core/message';
export { AsyncSocket, DEFAULTS } from './connection/async-socket';
export type { AsyncSocketOptions, Role } from './connection/async-socket';
export type { ConnectionPhase } from './core/state';
export { recvFrame, readData, readFragment, messages } from './connection/recv';
export type { Message, Fragment } from './connection/recv';
export { sendFrame, sendText, sendBinary, sendPing, sendPong, sendClose, sendChain, sendFragmented } from './connection/send';
export type { SendFrameOptions } from './connection/send';
export {
  generateKey,
  acceptKey,
  isValidKey,
  checkUpgradeRequest,
  checkConnectRequest,
  isRefusal,
  checkServerResponse,
  checkConnectResponse,
  buildServerResponse,
  buildRejectResponse
} from './core/handshake';
export type { UpgradeRequest, ConnectRequest, UpgradeRefusal } from './core/handshake';
export { parseExtensions, deflateOffer, acceptDeflate, checkDeflateResponse, PERMESSAGE_DEFLATE } from './core/extensions';
export type { ExtensionOffer, DeflateParams, DeflateNegotiation, DeflateAcceptance } from './core/extensions';
export { PerMessageDeflate, AMPLIFICATION_RATIO, AMPLIFIED_BUDGET, DEFLATE_CONCURRENCY, INFLATE_BUDGET } from './compression/deflate';
export { setZlibLimits } from './compression/zlib-jobs';
export type { ZlibLimits } from './compression/zlib-jobs';
export type { DeflateOptions, CompressionOptions, DeflateSettings } from './compression/deflate';
export { connect } from './handshake/client';
export type { ConnectOptions } from './handshake/client';
export { upgrade, rejectUpgrade, upgradeHttp2, rejectHttp2 } from './handshake/server';
export type { UpgradeOptions, Http2UpgradeOptions } from './handshake/server';
export { close, halfClose, whenClosed } from './connection/closing';
export type { CloseResult } from './connection/closing';
export { CHANNELS } from './connection/diagnostics';
export { listen } from './server/listen';
export { acceptWebSocket } from './server/accept';
export type { ListenOptions, ListenCommonOptions, Http2ListenOptions, WsRequest, WsServer, ConnectionHandler, AcceptOptions } from './server/options';
export { ping, keepalive } from './connection/keepalive';
export type { PingOptions, KeepaliveOptions } from './connection/keepalive';
export { handleEvents } from './adapters/events';
export type { EventHandlers } from './adapters/events';
export type { Headers } from './core/handshake';
export type { MessageLimits } from './core/message';
export { WebSocketStream, WebSocketStreamError, toWebSocketStream } from './adapters/websocket-stream';
export type { WebSocketCloseInfo, WebSocketOpenInfo, WebSocketStreamOptions } from './adapters/websocket-stream';
export { toDuplex } from './adapters/duplex';
export type { DuplexOptions } from './adapters/duplex';
