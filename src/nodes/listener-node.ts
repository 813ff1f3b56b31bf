/**
 * `websocket-plus-listener` config node: wires the flow properties to a core WebSocketListener on
 * Node-RED's own HTTP(S) server and connects it to the ws.in+ / ws.out+ nodes that use it.
 */
import { ConfigError } from '../core/errors';
import { parseListenerConfig, ListenerConfig, ListenerProperties } from '../core/listener-config';
import { WebSocketListener, ListenerSession } from '../core/listener';
import { frameToMessage, messageToFrame } from '../core/message-codec';
import { createTokenVerifier, CustomVerifyFunction } from '../core/token-verifier';
import { joinNodeRoot } from '../core/upgrade-dispatcher';
import { LogThrottle } from '../core/log-throttle';
import { AttachedNodes, Endpoint, InputOptions } from './endpoint';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from './red-types';

/** i18n key of a configuration problem (catalogue `websocket-plus.errors.*`). */
const CONFIG_ERROR_KEYS: Partial<Record<ConfigError['code'], string>> = {
  PATH_FORBIDDEN: 'path-forbidden',
  PATH_INVALID: 'path-invalid',
  PATH_CONFLICT: 'path-conflict',
  SECRET_MISSING: 'secret-missing',
  JWKS_URI_INVALID: 'jwks-uri-invalid',
  PUBLIC_KEY_INVALID: 'public-key-invalid',
  CUSTOM_VERIFIER_MISSING: 'custom-verifier-missing',
  TENANT_MISSING: 'tenant-missing',
  OPTION_INVALID: 'option-invalid',
  URL_INVALID: 'invalid-url',
  SERVER_MISSING: 'server-missing',
};

export function describeConfigError(RED: NodeAPI, err: unknown): string {
  if (err instanceof ConfigError) {
    const key = `websocket-plus.errors.${CONFIG_ERROR_KEYS[err.code] ?? 'option-invalid'}`;
    const translated = RED._(key);
    // Fall back to the English text when the catalogue lacks the key.
    return translated && translated !== key ? `${translated} (${err.message})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export interface ListenerNode extends Node, Endpoint {
  listener?: WebSocketListener;
}

export function registerListener(RED: NodeAPI): void {
  function WebSocketPlusListenerNode(this: ListenerNode, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const attached = new AttachedNodes(RED.util.cloneMessage);
    const refusalLog = new LogThrottle((line) => node.log(line));
    let config: ListenerConfig | undefined;
    let failure: string | undefined;

    try {
      const settings = (RED.settings.websocketPlusListener ?? {}) as { verifyToken?: CustomVerifyFunction };
      config = parseListenerConfig(def as ListenerProperties, { secret: node.credentials?.secret, verifyToken: settings.verifyToken });
      if (!RED.server) throw new ConfigError('SERVER_MISSING');
      const listener = new WebSocketListener({
        server: RED.server,
        path: joinNodeRoot(typeof RED.settings.httpNodeRoot === 'string' ? RED.settings.httpNodeRoot : '/', config.path),
        verifier: createTokenVerifier(config.verifier),
        tenant: config.tenant,
        scope: config.scope,
        sessionTimeoutMs: config.sessionTimeoutMs,
        onExpiry: config.onExpiry,
        rateLimit: config.rateLimit,
        maxConnectionsPerTenant: config.maxConnectionsPerTenant,
        maxPayload: config.maxPayload,
        origins: config.origins,
        heartbeatMs: config.heartbeatMs,
      });
      listener.start();
      node.listener = listener;
    } catch (err) {
      failure = describeConfigError(RED, err);
      node.error(failure);
    }

    const connectedStatus = (): NodeStatus => {
      const count = node.listener?.connectionCount ?? 0;
      return { fill: 'green', shape: count > 0 ? 'dot' : 'ring', text: RED._('websocket-plus.status.connected', { count }) };
    };
    attached.setStatus(failure ? { fill: 'red', shape: 'ring', text: failure } : connectedStatus());

    const wholeMessage = config?.wholeMessage ?? false;
    const listener = node.listener;
    if (listener) {
      listener.on('message', (session: ListenerSession, data: Buffer | string) => {
        const msg = frameToMessage(data, wholeMessage) as NodeMessage;
        msg._session = { ...session.info };
        attached.emit(msg);
      });
      listener.on('open', (session: ListenerSession) => {
        attached.setStatusSoon(connectedStatus);
        if (attached.hasEventInputs) attached.emit({ event: 'connect', _session: { ...session.info } }, true);
      });
      listener.on('close', (session: ListenerSession, code: number, reason: string) => {
        attached.setStatusSoon(connectedStatus);
        if (attached.hasEventInputs) attached.emit({ event: 'disconnect', code, reason, _session: { ...session.info } }, true);
      });
      listener.on('refused', (err) => refusalLog.note(`handshake refused: ${err.publicReason} (HTTP ${err.status})`));
      listener.on('enforced', (session, reason) => refusalLog.note(`session closed: ${reason.toLowerCase().replace(/_/g, ' ')}`));
    }

    node.registerInput = (input: Node, options: InputOptions) => attached.addInput(input, options);
    node.deregisterInput = (input: Node) => attached.removeInput(input);
    node.registerOutput = (output: Node) => attached.addOutput(output);
    node.deregisterOutput = (output: Node) => attached.removeOutput(output);
    node.sendFromFlow = (msg: NodeMessage, output: Node) => {
      if (!listener) {
        output.warn(RED._('websocket-plus.errors.listener-unavailable'));
        return;
      }
      const frame = messageToFrame(msg, wholeMessage);
      if (frame === undefined) return;
      const session = msg._session as { id?: unknown } | undefined;
      const result = listener.deliver(session?.id, frame);
      if (result.miss === 'no-session' || result.miss === 'unknown-session') {
        output.warn(RED._('websocket-plus.errors.no-session'));
      } else if (result.miss === 'session-closed') {
        output.warn(RED._('websocket-plus.errors.session-closed'));
      }
    };

    node.on('close', (_removed: boolean, done: () => void) => {
      attached.clear();
      refusalLog.close();
      if (!listener) {
        done();
        return;
      }
      listener.close().then(done, (err: unknown) => {
        node.error(err);
        done();
      });
    });
  }

  RED.nodes.registerType('websocket-plus-listener', WebSocketPlusListenerNode, {
    credentials: { secret: { type: 'password' } },
  });
}
