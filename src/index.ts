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
export { AsyncSocket, DEFAULTS } from './async-socket';
export type { AsyncSocketOptions, Role } from './async-socket';
export type { ConnectionPhase } from './core/state';
export { recvFrame, readData, readFragment, messages } from './recv';
export type { Message, Fragment } from './recv';
export { sendFrame, sendText, sendBinary, sendPing, sendPong, sendClose, sendChain, sendFragmented } from './send';
export type { SendFrameOptions } from './send';
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
export { PerMessageDeflate, AMPLIFICATION_RATIO, AMPLIFIED_BUDGET, DEFLATE_CONCURRENCY, INFLATE_BUDGET } from './deflate';
export { setZlibLimits } from './zlib-jobs';
export type { ZlibLimits } from './zlib-jobs';
export type { DeflateOptions, CompressionOptions, DeflateSettings } from './deflate';
export { connect } from './client';
export type { ConnectOptions } from './client';
export { upgrade, rejectUpgrade, upgradeHttp2, rejectHttp2 } from './server';
export type { UpgradeOptions, Http2UpgradeOptions } from './server';
export { close, halfClose, whenClosed } from './closing';
export type { CloseResult } from './closing';
export { CHANNELS } from './diagnostics';
export { listen, acceptWebSocket } from './listener';
export type { ListenOptions, ListenCommonOptions, Http2ListenOptions, WsRequest, WsServer, ConnectionHandler, AcceptOptions } from './listener';
export { ping, keepalive } from './keepalive';
export type { PingOptions, KeepaliveOptions } from './keepalive';
export { handleEvents } from './events';
export type { EventHandlers } from './events';
export type { Headers } from './core/handshake';
export type { MessageLimits } from './core/message';
export { WebSocketStream, WebSocketStreamError, toWebSocketStream } from './websocket-stream';
export type { WebSocketCloseInfo, WebSocketOpenInfo, WebSocketStreamOptions } from './websocket-stream';
export { toDuplex } from './duplex';
export type { DuplexOptions } from './duplex';
