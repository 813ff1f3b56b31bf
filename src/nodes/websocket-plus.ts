/**
 * Node-RED entry point: registers the four websocket-plus types. Each registration is thin; the
 * behaviour lives in src/core.
 */
import { registerListener } from './listener-node';
import { registerFlowNodes } from './flow-nodes';
import type { NodeAPI } from './red-types';

export = function websocketPlus(RED: NodeAPI): void {
  registerListener(RED);
  // CLIENT-HOOK: the websocket-plus-client config node registers here (src/nodes/client-node.ts).
  registerFlowNodes(RED);
};
