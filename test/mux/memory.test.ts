// Session behaviour over an in-memory duplex pair, both roles.
import { behaviourScenarios } from './scenarios.js';
import { memoryTransport } from './transports.js';

behaviourScenarios(memoryTransport);
