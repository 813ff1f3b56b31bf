/**
 * `websocket-plus-client` config node: wires the flow properties to a core OutboundConnection and
 * connects it to the ws.in+ / ws.out+ nodes that use it. A client has one socket at a time, so
 * routing is trivial: ws.out+ sends on it, ws.in+ messages carry that socket's id.
 */
import { describeConfigError } from '../core/errors';
import { OutboundConnection } from '../core/client/outbound-connection';
import { clientSession, ClientProperties, parseClientConfig } from '../core/flow/client-config';
import { frameToMessage, messageToFrame } from '../core/flow/message-codec';
import { filterPeerProps, PeerProps } from '../core/flow/peer-props';
import { LogThrottle } from '../core/log-throttle';
import { watchClient } from '../core/metrics/metrics';
import type { ProxySettings, TlsOptions } from '../core/client/proxy';
import { AttachedNodes, Endpoint, exposeEndpoint, failureStatus, finishClose } from './endpoint';
import { text } from './i18n';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from './red-types';

interface TlsConfigNode {
  addTLSOptions?(options: Record<string, unknown>): void;
}

type EvaluateProperty = (value: string, type: string, node: Node) => unknown;

interface ClientNode extends Node, Endpoint {
  connection?: OutboundConnection;
}

export function registerClient(RED: NodeAPI): void {
  function WebSocketPlusClientNode(this: ClientNode, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const attached = new AttachedNodes(RED.util.cloneMessage);
    const log = new LogThrottle((line) => node.log(line));
    let wholeMessage = false;
    let peerProps: PeerProps = null;
    let failure: string | undefined;

    const evaluate = (RED.util as unknown as { evaluateNodeProperty?: EvaluateProperty }).evaluateNodeProperty;
    // Core reads an "env" header through evaluateNodeProperty, which also sees flow/group env.
    const readEnv = (name: string): unknown => (evaluate ? evaluate(name, 'env', node) : process.env[name]);

    try {
      const config = parseClientConfig(def as ClientProperties, node.credentials?.token, readEnv);
      wholeMessage = config.wholeMessage;
      peerProps = config.peerProps;
      const tls: TlsOptions = {};
      const tlsNode =
        typeof def.tls === 'string' && def.tls ? (RED.nodes.getNode(def.tls) as TlsConfigNode | null) : null;
      if (tlsNode && typeof tlsNode.addTLSOptions === 'function') tlsNode.addTLSOptions(tls as Record<string, unknown>);
      node.connection = new OutboundConnection({
        ...config,
        tls,
        proxy: RED.settings.proxyOptions as ProxySettings | undefined,
      });
    } catch (err) {
      failure = describeConfigError(err, (key) => text(RED, key));
      node.error(failure);
    }
    const connection = node.connection;

    const show = (status: NodeStatus): void => attached.setStatus(status);
    const connecting: NodeStatus = {
      fill: 'yellow',
      shape: 'ring',
      text: text(RED, 'websocket-plus.status.connecting'),
    };
    show(failure ? failureStatus(failure) : connecting);

    if (connection) {
      connection.on('connecting', () => show(connecting));
      connection.on('open', (id) => {
        show({ fill: 'green', shape: 'dot', text: text(RED, 'websocket-plus.status.connected', { count: '' }).trim() });
        node.log(`connected to ${connection.displayUrl}`);
        if (!attached.hasEventInputs) return;
        try {
          attached.emit({ event: 'connect', _session: clientSession(id) }, true);
        } catch {
          log.note(`connection to ${connection.displayUrl}: connect event not delivered`);
        }
      });
      // Runs inside ws's 'message' event: nothing may be thrown from here. A message the flow cannot
      // take closes this socket (the connection then reconnects with its backoff).
      connection.on('message', (data, _isBinary, id) => {
        const parsed = frameToMessage(data, wholeMessage);
        if (!parsed) {
          log.note(`connection to ${connection.displayUrl} closed: message nested too deep`);
          connection.closeSocket('MESSAGE_TOO_DEEP');
          return;
        }
        const msg = filterPeerProps(parsed, peerProps) as NodeMessage;
        msg._session = clientSession(id);
        try {
          attached.emit(msg);
        } catch {
          log.note(`connection to ${connection.displayUrl} closed: delivery failed`);
          connection.closeSocket('DELIVERY_FAILED');
        }
      });
      connection.on('close', (code, reason, id) => {
        show(failureStatus(text(RED, 'websocket-plus.status.disconnected-code', { code })));
        if (!attached.hasEventInputs) return;
        try {
          attached.emit({ event: 'disconnect', code, reason, _session: clientSession(id) }, true);
        } catch {
          log.note(`connection to ${connection.displayUrl}: disconnect event not delivered`);
        }
      });
      connection.on('refused', (status) => {
        show(failureStatus(text(RED, 'websocket-plus.status.refused', { status })));
        log.note(`handshake refused by ${connection.displayUrl}: HTTP ${status}`);
      });
      connection.on('error', (err) => {
        show(failureStatus(text(RED, 'websocket-plus.status.error')));
        // Already stripped of the token by the connection.
        log.note(`connection to ${connection.displayUrl} failed: ${err.message}`);
      });
      node.on('close', watchClient(connection));
      connection.start();
    }

    exposeEndpoint(node, attached, (msg: NodeMessage, output: Node) => {
      const frame = messageToFrame(msg, wholeMessage);
      if (frame === undefined) return;
      if (!connection?.send(frame)) output.warn(text(RED, 'websocket-plus.errors.not-connected'));
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      attached.clear();
      log.close();
      finishClose(node, connection?.close(), done);
    });
  }

  RED.nodes.registerType('websocket-plus-client', WebSocketPlusClientNode, {
    credentials: { token: { type: 'password' } },
  });
}
