// Issue 2's bulk scenarios over TCP on loopback, streams opened by the yamux client
// (one file per role keeps each file well under a minute on a loaded machine).
import { bulkScenarios } from './scenarios.js';
import { tcpTransport } from './transports.js';

bulkScenarios(tcpTransport, 'client opens');
