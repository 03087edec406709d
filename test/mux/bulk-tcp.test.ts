// Issue 2's bulk scenarios over TCP on loopback, both roles.
import { bulkScenarios, ROLES } from './scenarios.js';
import { tcpTransport } from './transports.js';

for (const role of ROLES) bulkScenarios(tcpTransport, role);
