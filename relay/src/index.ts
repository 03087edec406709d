export {
  EmbeddedPostgresError,
  type EmbeddedPostgresOptions,
  freePort,
  type RunningPostgres,
  startEmbeddedPostgres,
} from './store/embedded.js';
