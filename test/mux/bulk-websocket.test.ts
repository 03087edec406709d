// Issue 2's bulk scenarios over a real ws WebSocket on loopback, both roles.
import { bulkScenarios, ROLES } from './scenarios.js';
import { websocketTransport } from './transports.js';

for (const role of ROLES) bulkScenarios(websocketTransport, role);
