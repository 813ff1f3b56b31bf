/**
 * Node-RED entry point: registers the five websocket-plus types and the metrics endpoint. Each
 * registration is thin; the behaviour lives in src/core.
 */
import { registerListener } from './listener-node';
import { registerFlowNodes } from './flow-nodes';
import { registerClient } from './client-node';
import { registerMetricsEndpoint } from './metrics-endpoint';
import { registerControl } from './control-node';
import type { NodeAPI } from './red-types';

export = function websocketPlus(RED: NodeAPI): void {
  registerListener(RED);
  registerClient(RED);
  registerFlowNodes(RED);
  registerMetricsEndpoint(RED);
  registerControl(RED);
};
