// Session behaviour over TCP on loopback, both roles.
import { behaviourScenarios } from './scenarios.js';
import { tcpTransport } from './transports.js';

behaviourScenarios(tcpTransport);
