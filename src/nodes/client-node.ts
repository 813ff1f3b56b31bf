/**
 * `websocket-plus-client` config node: wires the flow properties to a core OutboundConnection and
 * connects it to the ws.in+ / ws.out+ nodes that use it. A client has one socket at a time, so
 * routing is trivial: ws.out+ sends on it, ws.in+ messages carry that socket's id.
 */
import { OutboundConnection } from '../core/client/outbound-connection';
import { frameToMessage, messageToFrame } from '../core/flow/message-codec';
import { filterPeerProps, parsePeerProps, PeerProps } from '../core/flow/peer-props';
import { LogThrottle } from '../core/log-throttle';
import { watchClient } from '../core/metrics/metrics';
import type { ProxySettings, TlsOptions } from '../core/client/proxy';
import { AttachedNodes, Endpoint, exposeEndpoint, finishClose } from './endpoint';
import { describeConfigError } from './listener-node';
import { text } from './i18n';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from './red-types';

/** One upgrade header as core's websocket-client stores it in the flow. */
export interface HeaderEntry {
  keyType?: string;
  keyValue?: string;
  valueType?: string;
  valueValue?: string;
}

/**
 * Turns the flow's header list into a function called at each connect, so a header taken from an
 * environment variable follows the variable. Same reading as core: keyType "other" means the name
 * is keyValue, otherwise keyType is the name; valueType "other" is a static string, "env" names an
 * environment variable, any other valueType is itself the value (a preset). Empty names or values
 * are left out.
 */
export function headerResolver(entries: unknown, readEnv: (name: string) => unknown): () => Record<string, string> {
  const list: HeaderEntry[] = Array.isArray(entries) ? entries.filter((e) => e && typeof e === 'object') : [];
  return () => {
    const headers: Record<string, string> = {};
    for (const entry of list) {
      const name = entry.keyType === 'other' ? entry.keyValue : entry.keyType;
      let value: unknown;
      if (entry.valueType === 'other') value = entry.valueValue;
      else if (entry.valueType === 'env') value = entry.valueValue ? readEnv(entry.valueValue) : undefined;
      else value = entry.valueType;
      if (name && value !== undefined && value !== null && value !== '') headers[String(name).trim()] = String(value);
    }
    return headers;
  };
}

/** Heartbeat seconds from the flow ("" or "0" = off) to ms. */
export function heartbeatMs(value: unknown): number {
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : 0;
}

interface TlsConfigNode {
  addTLSOptions?(options: Record<string, unknown>): void;
}

type EvaluateProperty = (value: string, type: string, node: Node) => unknown;

export interface ClientNode extends Node, Endpoint {
  connection?: OutboundConnection;
}

export function registerClient(RED: NodeAPI): void {
  function WebSocketPlusClientNode(this: ClientNode, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const attached = new AttachedNodes(RED.util.cloneMessage);
    const log = new LogThrottle((line) => node.log(line));
    const wholeMessage = def.wholemsg === true || def.wholemsg === 'true';
    let peerProps: PeerProps = null;
    let failure: string | undefined;

    const evaluate = (RED.util as unknown as { evaluateNodeProperty?: EvaluateProperty }).evaluateNodeProperty;
    // Core reads an "env" header through evaluateNodeProperty, which also sees flow/group env.
    const readEnv = (name: string): unknown => (evaluate ? evaluate(name, 'env', node) : process.env[name]);

    try {
      // Payload mode puts the frame in msg.payload only: the list is not used there, so not checked either.
      if (wholeMessage) peerProps = parsePeerProps(def.peerProps);
      const tls: TlsOptions = {};
      const tlsNode = typeof def.tls === 'string' && def.tls ? (RED.nodes.getNode(def.tls) as TlsConfigNode | null) : null;
      if (tlsNode && typeof tlsNode.addTLSOptions === 'function') tlsNode.addTLSOptions(tls as Record<string, unknown>);
      node.connection = new OutboundConnection({
        url: String(def.path ?? ''),
        authMode: def.authMode === 'none' ? 'none' : 'jwt',
        // Node-RED has already replaced a `${ENV_VAR}` credential with the variable's value.
        token: node.credentials?.token,
        subprotocol: typeof def.subprotocol === 'string' ? def.subprotocol : '',
        headers: headerResolver(def.headers, readEnv),
        tls,
        proxy: RED.settings.proxyOptions as ProxySettings | undefined,
        heartbeatMs: heartbeatMs(def.hb),
      });
    } catch (err) {
      failure = describeConfigError(RED, err);
      node.error(failure);
    }
    const connection = node.connection;

    const sessionOf = (id: string | undefined) => ({ type: 'websocket', id, authStatus: 'none', routingScope: 'session' });
    const show = (status: NodeStatus): void => attached.setStatus(status);
    show(failure ? { fill: 'red', shape: 'ring', text: failure } : { fill: 'yellow', shape: 'ring', text: text(RED, 'websocket-plus.status.connecting', 'connecting') });

    if (connection) {
      connection.on('connecting', () => show({ fill: 'yellow', shape: 'ring', text: text(RED, 'websocket-plus.status.connecting', 'connecting') }));
      connection.on('open', (id) => {
        show({ fill: 'green', shape: 'dot', text: text(RED, 'websocket-plus.status.connected', 'connected', { count: '' }).trim() });
        node.log(`connected to ${connection.displayUrl}`);
        if (!attached.hasEventInputs) return;
        try {
          attached.emit({ event: 'connect', _session: sessionOf(id) }, true);
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
        msg._session = sessionOf(id);
        try {
          attached.emit(msg);
        } catch {
          log.note(`connection to ${connection.displayUrl} closed: delivery failed`);
          connection.closeSocket('DELIVERY_FAILED');
        }
      });
      connection.on('close', (code, reason, id) => {
        show({ fill: 'red', shape: 'ring', text: text(RED, 'websocket-plus.status.disconnected-code', `disconnected ${code}`, { code }) });
        if (!attached.hasEventInputs) return;
        try {
          attached.emit({ event: 'disconnect', code, reason, _session: sessionOf(id) }, true);
        } catch {
          log.note(`connection to ${connection.displayUrl}: disconnect event not delivered`);
        }
      });
      connection.on('refused', (status) => {
        show({ fill: 'red', shape: 'ring', text: text(RED, 'websocket-plus.status.refused', `refused ${status}`, { status }) });
        log.note(`handshake refused by ${connection.displayUrl}: HTTP ${status}`);
      });
      connection.on('error', (err) => {
        show({ fill: 'red', shape: 'ring', text: text(RED, 'websocket-plus.status.error', 'error') });
        // Already stripped of the token by the connection.
        log.note(`connection to ${connection.displayUrl} failed: ${err.message}`);
      });
      node.on('close', watchClient(connection));
      connection.start();
    }

    exposeEndpoint(node, attached, (msg: NodeMessage, output: Node) => {
      const frame = messageToFrame(msg, wholeMessage);
      if (frame === undefined) return;
      if (!connection?.send(frame)) {
        output.warn(text(RED, 'websocket-plus.errors.not-connected', 'not connected: message not sent'));
      }
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
