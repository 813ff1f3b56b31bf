/**
 * `websocket-plus-listener` config node: wires the flow properties to a core WebSocketListener on
 * Node-RED's own HTTP(S) server and connects it to the ws.in+ / ws.out+ nodes that use it.
 */
import { ConfigError } from '../core/errors';
import { handshakeTiming, listenerRequestPath, parseListenerConfig, ListenerConfig, ListenerProperties, validateListenerPath } from '../core/flow/listener-config';
import { WebSocketListener, ListenerSession } from '../core/server/listener';
import { frameToMessage, messageToFrame } from '../core/flow/message-codec';
import { filterPeerProps } from '../core/flow/peer-props';
import { createTokenVerifier, CustomVerifyFunction, MIN_HS256_SECRET_BYTES } from '../core/auth/token-verifier';
import { refuseUpgrades } from '../core/server/upgrade-dispatcher';
import { LogThrottle } from '../core/log-throttle';
import { createProxyFetch, ProxySettings } from '../core/client/proxy';
import { ClusterBus, defaultClusterPrefix } from '../core/cluster/cluster-bus';
import { RedisTenantLimiter } from '../core/cluster/redis-tenant-limiter';
import { watchListener } from '../core/metrics/metrics';
import { AttachedNodes, Endpoint, exposeEndpoint, finishClose } from './endpoint';
import { text } from './i18n';
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
  TOKEN_MISSING: 'token-missing',
};

export function describeConfigError(RED: NodeAPI, err: unknown): string {
  if (err instanceof ConfigError) {
    const key = `websocket-plus.errors.${CONFIG_ERROR_KEYS[err.code] ?? 'option-invalid'}`;
    const translated = text(RED, key, '');
    return translated ? `${translated} (${err.message})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * A listener that cannot start answers its path with 503 (fail closed, and fast) until redeployed;
 * never a path of Node-RED's own (the editor's comms keeps working).
 */
function refuseWhileMisconfigured(RED: NodeAPI, path: unknown): (() => void) | undefined {
  if (!RED.server) return undefined;
  try {
    return refuseUpgrades(RED.server, listenerRequestPath(validateListenerPath(path), RED.settings), 503);
  } catch {
    return undefined;
  }
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
    // Reconnect attempts repeat every 2 s while Redis is away: one line, then a count per minute.
    const clusterLog = new LogThrottle((line) => node.log(line), 60_000);
    let config: ListenerConfig | undefined;
    let failure: string | undefined;
    let cluster: ClusterBus | undefined;
    let clusterLimiter: RedisTenantLimiter | undefined;
    let stopRefusing: (() => void) | undefined;
    let unwatch: (() => void) | undefined;

    try {
      const settings = (RED.settings.websocketPlusListener ?? {}) as { verifyToken?: CustomVerifyFunction };
      config = parseListenerConfig(def as ListenerProperties, { secret: node.credentials?.secret, verifyToken: settings.verifyToken, redisUrl: node.credentials?.redisUrl });
      if (config.verifier.mode === 'hs256' && Buffer.byteLength(config.verifier.secret ?? '') < MIN_HS256_SECRET_BYTES) {
        // RFC 8725 §3.5: a short or memorable HS256 secret can be brute-forced offline from one token.
        node.warn(text(RED, 'websocket-plus.warnings.short-secret', `shared secret is shorter than ${MIN_HS256_SECRET_BYTES} bytes: use a long random secret`, { bytes: MIN_HS256_SECRET_BYTES }));
      }
      if (!RED.server) throw new ConfigError('SERVER_MISSING');
      const listenerPath = listenerRequestPath(config.path, RED.settings);
      // Every handshake answer (401/503) must reach the client before Node-RED cuts the upgrade.
      const timing = handshakeTiming(RED.settings.inboundWebSocketTimeout);
      if (config.cluster.mode === 'redis') {
        // ioredis is loaded here, only for listeners that use the cluster.
        cluster = new ClusterBus({ url: config.cluster.redisUrl, prefix: config.cluster.prefix || defaultClusterPrefix(listenerPath) });
        if (config.maxConnectionsPerTenant > 0) clusterLimiter = new RedisTenantLimiter(cluster, { maxPerTenant: config.maxConnectionsPerTenant });
      }
      const listener = new WebSocketListener({
        server: RED.server,
        path: listenerPath,
        cluster,
        tenantLimiter: clusterLimiter,
        // The JWKS is fetched through the same proxy rules as the client (settings, then environment).
        verifier: createTokenVerifier({
          ...config.verifier,
          jwksTimeoutMs: timing.jwksTimeoutMs,
          fetch: config.verifier.fetch ?? createProxyFetch(RED.settings.proxyOptions as ProxySettings | undefined),
        }),
        handshakeTimeoutMs: timing.handshakeTimeoutMs,
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
      unwatch = watchListener(listener, { perTenant: def.metricsPerTenant === true || def.metricsPerTenant === 'true' });
      node.listener = listener;
    } catch (err) {
      failure = describeConfigError(RED, err);
      node.error(failure);
      // Nothing is connected yet; this frees the limiter's timer.
      void clusterLimiter?.close();
      void cluster?.close();
      cluster = undefined;
      clusterLimiter = undefined;
      stopRefusing = refuseWhileMisconfigured(RED, def.path);
    }

    const connectedStatus = (): NodeStatus => {
      const count = node.listener?.connectionCount ?? 0;
      if (cluster?.state === 'degraded') {
        // Redis is away: local connections are still served, other instances are not reached.
        return { fill: 'yellow', shape: count > 0 ? 'dot' : 'ring', text: text(RED, 'websocket-plus.status.degraded', `connected ${count} (cluster degraded)`, { count }) };
      }
      return { fill: 'green', shape: count > 0 ? 'dot' : 'ring', text: RED._('websocket-plus.status.connected', { count }) };
    };
    attached.setStatus(failure ? { fill: 'red', shape: 'ring', text: failure } : connectedStatus());

    const wholeMessage = config?.wholeMessage ?? false;
    const peerProps = config?.peerProps ?? null;
    const listener = node.listener;
    /** connect/disconnect events run inside ws's events too: a flow that throws is logged, never rethrown. */
    const emitEvent = (msg: NodeMessage): void => {
      try {
        attached.emit(msg, true);
      } catch {
        refusalLog.note(`session event not delivered: ${String(msg.event)}`);
      }
    };
    if (listener) {
      // A throw from here is contained by the listener: the session is closed with 1011 (delivery failed).
      listener.on('message', (session: ListenerSession, data: Buffer | string) => {
        const parsed = frameToMessage(data, wholeMessage);
        if (!parsed) {
          listener.closeSession(session, 'MESSAGE_TOO_DEEP');
          return;
        }
        const msg = filterPeerProps(parsed, peerProps) as NodeMessage;
        msg._session = { ...session.info };
        attached.emit(msg);
      });
      listener.on('open', (session: ListenerSession) => {
        attached.setStatusSoon(connectedStatus);
        if (attached.hasEventInputs) emitEvent({ event: 'connect', _session: { ...session.info } });
      });
      listener.on('close', (session: ListenerSession, code: number, reason: string) => {
        attached.setStatusSoon(connectedStatus);
        if (attached.hasEventInputs) emitEvent({ event: 'disconnect', code, reason, _session: { ...session.info } });
      });
      listener.on('refused', (err) => refusalLog.note(`handshake refused: ${err.publicReason} (HTTP ${err.status})`));
      listener.on('enforced', (_session, reason) => refusalLog.note(`session closed: ${reason.toLowerCase().replace(/_/g, ' ')}`));
    }
    if (listener && cluster) {
      const scrub = secretScrubber(config?.cluster.mode === 'redis' ? config.cluster.redisUrl : undefined);
      cluster.on('state', (state) => {
        if (state === 'closed') return;
        if (state === 'degraded') {
          node.warn(text(RED, 'websocket-plus.errors.cluster-unavailable', 'Redis cluster unavailable: delivering locally only'));
        } else if (state === 'ready') {
          node.log('cluster connected');
        }
        attached.setStatus(connectedStatus());
      });
      cluster.on('connectionError', (err) => clusterLog.note(`cluster: ${scrub(err.message)}`));
      cluster.on('deliveryError', (err) => clusterLog.note(`cluster: ${scrub(err.message)}`));
    }

    exposeEndpoint(node, attached, (msg: NodeMessage, output: Node) => {
      if (!listener) {
        output.warn(RED._('websocket-plus.errors.listener-unavailable'));
        return;
      }
      const frame = messageToFrame(msg, wholeMessage);
      if (frame === undefined) return;
      const session = msg._session as { id?: unknown } | undefined;
      const result = listener.deliver(session?.id, frame);
      // A session unknown here may live on another instance: the cluster routes it to its owner.
      if (result.published && result.miss === 'unknown-session') return;
      if (result.miss === 'no-session' || result.miss === 'unknown-session') {
        output.warn(RED._('websocket-plus.errors.no-session'));
      } else if (result.miss === 'session-closed') {
        output.warn(RED._('websocket-plus.errors.session-closed'));
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      attached.clear();
      clusterLog.close();
      stopRefusing?.();
      // Handshakes refused while the listener closes are still logged; the throttle goes after.
      const closing = listener?.close().finally(() => {
        refusalLog.close();
        unwatch?.();
      });
      if (!closing) refusalLog.close();
      finishClose(node, closing, done);
    });
  }

  RED.nodes.registerType('websocket-plus-listener', WebSocketPlusListenerNode, {
    credentials: { secret: { type: 'password' }, redisUrl: { type: 'password' } },
  });
}

/** Removes the Redis password (and the URL itself) from a message before it is logged. */
function secretScrubber(url: string | undefined): (text: string) => string {
  const secrets: string[] = [];
  if (url) {
    secrets.push(url);
    try {
      const parsed = new URL(url);
      if (parsed.password) secrets.push(parsed.password, decodeURIComponent(parsed.password));
    } catch {
      // validated before; nothing to add
    }
  }
  return (text) => secrets.reduce((out, secret) => (secret ? out.split(secret).join('***') : out), text);
}
