/**
 * ws.in+ and ws.out+: they attach to whichever config node is selected (client first, as core
 * does) and leave all the work to it.
 */
import { isEndpoint } from './endpoint';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './red-types';

function endpointOf(RED: NodeAPI, def: NodeDef) {
  const id = (def.client as string | undefined) || (def.server as string | undefined);
  const endpoint = id ? RED.nodes.getNode(id) : undefined;
  return isEndpoint(endpoint) ? endpoint : undefined;
}

export function registerFlowNodes(RED: NodeAPI): void {
  function WebSocketPlusInNode(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const endpoint = endpointOf(RED, def);
    if (!endpoint) {
      this.error(RED._('websocket-plus.errors.missing-conf'));
      this.status({ fill: 'red', shape: 'ring', text: RED._('websocket-plus.errors.missing-conf') });
      return;
    }
    endpoint.registerInput(this, { events: def.events === true || def.events === 'true' });
    this.on('close', (_removed: boolean, done: () => void) => {
      endpoint.deregisterInput(this);
      this.status({});
      done();
    });
  }

  function WebSocketPlusOutNode(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const endpoint = endpointOf(RED, def);
    if (!endpoint) {
      this.error(RED._('websocket-plus.errors.missing-conf'));
      this.status({ fill: 'red', shape: 'ring', text: RED._('websocket-plus.errors.missing-conf') });
      return;
    }
    endpoint.registerOutput(this);
    this.on('input', (msg: NodeMessage, _send: unknown, done: (err?: Error) => void) => {
      endpoint.sendFromFlow(msg, this);
      done();
    });
    this.on('close', (_removed: boolean, done: () => void) => {
      endpoint.deregisterOutput(this);
      this.status({});
      done();
    });
  }

  RED.nodes.registerType('websocket-plus in', WebSocketPlusInNode);
  RED.nodes.registerType('websocket-plus out', WebSocketPlusOutNode);
}
