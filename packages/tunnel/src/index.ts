// @g2c/tunnel: what the agent and the relay both speak on top of the mux.
export {
  isTunnelErrorCode,
  OpenHeaderError,
  TUNNEL_ERROR_CODES,
  TunnelError,
  type TunnelErrorCode,
  WebSocketClosedError,
} from './errors.js';
export {
  encodeOpenHeader,
  OPEN_HEADER_MAX,
  OPEN_VERSION,
  OpenHeaderReader,
  type OpenReply,
  type OpenRequest,
  parseOpenReply,
  parseOpenRequest,
} from './open-header.js';
export { OpenHeaderTimeoutError, type ReadOpenHeaderOptions, readOpenHeader } from './read-open-header.js';
export {
  AGENT_HEADER,
  AGENT_PATH,
  AGENT_VERSION,
  CloseCode,
  DIAL_TIMEOUT_MS,
  DRAIN_TIMEOUT_MS,
  formatAgentHeader,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_TIMEOUT_MS,
  OPEN_TIMEOUT_MS,
  parseAgentHeader,
  SUBPROTOCOL,
} from './version.js';
export { type WebSocketDuplexOptions, websocketDuplex } from './ws-duplex.js';
