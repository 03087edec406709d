// Issue 2's bulk scenarios over a real ws WebSocket on loopback, streams opened by the yamux client
// (one file per role keeps each file well under a minute on a loaded machine).
import { bulkScenarios } from './scenarios.js';
import { websocketTransport } from './transports.js';

bulkScenarios(websocketTransport, 'client opens');
