// Session behaviour over a real ws WebSocket on loopback, both roles.
import { behaviourScenarios } from './scenarios.js';
import { websocketTransport } from './transports.js';

behaviourScenarios(websocketTransport);
