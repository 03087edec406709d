// Issue 2's bulk scenarios over an in-memory duplex pair, both roles.
import { bulkScenarios, ROLES } from './scenarios.js';
import { memoryTransport } from './transports.js';

for (const role of ROLES) bulkScenarios(memoryTransport, role);
