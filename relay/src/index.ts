export {
  EmbeddedPostgresError,
  type EmbeddedPostgresOptions,
  embeddedPostgresBinaries,
  freePort,
  type PostgresBinaries,
  type RunningPostgres,
  startEmbeddedPostgres,
} from './store/embedded.js';
