// @g2c/mux: the yamux wire protocol (HashiCorp spec, version 0) as Node streams.
// A Session runs over any Duplex that already exists; its streams are Duplexes too.
export { DEFAULT_CONFIG, type MuxConfig, verifyConfig } from './config.js';
export { duplexPair } from './duplex-pair.js';
export { isMuxError, MuxError, type MuxErrorCode } from './errors.js';
export {
  encodeFrame,
  encodeHeader,
  Flag,
  type Frame,
  FrameDecoder,
  FrameType,
  GoAwayCode,
  HEADER_SIZE,
  INITIAL_WINDOW,
  PROTOCOL_VERSION,
} from './frame.js';
export { Session, type SessionOptions } from './session.js';
export { Stream } from './stream.js';
