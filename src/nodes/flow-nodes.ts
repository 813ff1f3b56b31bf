/**
 * ws.in+ and ws.out+: they attach to whichever config node is selected (client first, as core
 * does) and leave all the work to it.
 */
import { Endpoint, isEndpoint } from './endpoint';
import { text } from './i18n';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './red-types';

/** The node's endpoint, or undefined after reporting that none is configured. */
function attachToEndpoint(RED: NodeAPI, node: Node, def: NodeDef): Endpoint | undefined {
  const id = (def.client as string | undefined) || (def.server as string | undefined);
  const endpoint = id ? RED.nodes.getNode(id) : undefined;
  if (isEndpoint(endpoint)) return endpoint;
  const problem = text(RED, 'websocket-plus.errors.missing-conf');
  node.error(problem);
  node.status({ fill: 'red', shape: 'ring', text: problem });
  return undefined;
}

export function registerFlowNodes(RED: NodeAPI): void {
  function WebSocketPlusInNode(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const endpoint = attachToEndpoint(RED, this, def);
    if (!endpoint) return;
    endpoint.registerInput(this, { events: def.events === true || def.events === 'true' });
    this.on('close', (_removed: boolean, done: () => void) => {
      endpoint.deregisterInput(this);
      this.status({});
      done();
    });
  }

  function WebSocketPlusOutNode(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const endpoint = attachToEndpoint(RED, this, def);
    if (!endpoint) return;
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
