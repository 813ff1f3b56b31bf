/**
 * `websocket-plus-listener` config node: wires the flow properties to a core WebSocketListener on
 * Node-RED's own HTTP(S) server and connects it to the ws.in+ / ws.out+ nodes that use it.
 */
import { ConfigError, describeConfigError } from '../core/errors';
import {
  handshakeTiming,
  listenerRequestPath,
  parseListenerConfig,
  ListenerConfig,
  ListenerProperties,
  refuseWhileMisconfigured,
} from '../core/flow/listener-config';
import { deliveryProblem, WebSocketListener, ListenerSession } from '../core/server/listener';
import { frameToMessage, messageToFrame, sessionRef } from '../core/flow/message-codec';
import { filterPeerProps } from '../core/flow/peer-props';
import {
  createTokenVerifier,
  CustomVerifyFunction,
  hasShortSecret,
  MIN_HS256_SECRET_BYTES,
} from '../core/auth/token-verifier';
import { LogThrottle } from '../core/log-throttle';
import { scrubSecrets, urlSecrets } from '../core/secrets';
import { createProxyFetch, ProxySettings } from '../core/client/proxy';
import { ClusterBus, defaultClusterPrefix } from '../core/cluster/cluster-bus';
import { RedisTenantLimiter } from '../core/cluster/redis-tenant-limiter';
import { watchListener } from '../core/metrics/metrics';
import {
  AttachedNodes,
  connectionCountStatus,
  Endpoint,
  exposeEndpoint,
  failureStatus,
  finishClose,
  newMessageId,
} from './endpoint';
import { text } from './i18n';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeStatus } from './red-types';

interface ListenerNode extends Node, Endpoint {
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
      config = parseListenerConfig(def as ListenerProperties, {
        secret: node.credentials?.secret,
        verifyToken: settings.verifyToken,
        redisUrl: node.credentials?.redisUrl,
        sentinelUsername: node.credentials?.sentinelUsername,
        sentinelPassword: node.credentials?.sentinelPassword,
      });
      if (hasShortSecret(config.verifier))
        node.warn(text(RED, 'websocket-plus.warnings.short-secret', { bytes: MIN_HS256_SECRET_BYTES }));
      if (!RED.server) throw new ConfigError('SERVER_MISSING');
      const listenerPath = listenerRequestPath(config.path, RED.settings);
      // Every handshake answer (401/503) must reach the client before Node-RED cuts the upgrade.
      const timing = handshakeTiming(RED.settings.inboundWebSocketTimeout);
      if (config.cluster.mode !== 'off') {
        // ioredis is loaded here, only for listeners that use the cluster.
        cluster = new ClusterBus({
          topology: config.cluster.topology,
          url: config.cluster.redisUrl,
          sentinelName: config.cluster.sentinelName || undefined,
          sentinelUsername: config.cluster.sentinelUsername || undefined,
          sentinelPassword: config.cluster.sentinelPassword || undefined,
          prefix: config.cluster.prefix || defaultClusterPrefix(listenerPath),
        });
        if (config.maxConnectionsPerTenant > 0)
          clusterLimiter = new RedisTenantLimiter(cluster, { maxPerTenant: config.maxConnectionsPerTenant });
      }
      const listener = new WebSocketListener({
        ...config,
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
      });
      listener.start();
      unwatch = watchListener(listener, { perTenant: config.metricsPerTenant });
      node.listener = listener;
    } catch (err) {
      failure = describeConfigError(err, (key) => text(RED, key));
      node.error(failure);
      // Nothing is connected yet; this frees the limiter's timer.
      void clusterLimiter?.close();
      void cluster?.close();
      cluster = undefined;
      clusterLimiter = undefined;
      stopRefusing = refuseWhileMisconfigured(RED.server, def.path, RED.settings);
    }

    const connectedStatus = (): NodeStatus => {
      const count = node.listener?.connectionCount ?? 0;
      // Redis away: local connections are still served, other instances are not reached.
      const degraded = cluster?.state === 'degraded';
      return connectionCountStatus(
        count,
        degraded,
        text(RED, `websocket-plus.status.${degraded ? 'degraded' : 'connected'}`, { count }),
      );
    };
    attached.setStatus(failure ? failureStatus(failure) : connectedStatus());

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
        if (!wholeMessage) {
          // Payload mode: the message made with all its properties at once (no property added later).
          attached.emit({ payload: data, _session: sessionRef(session.info), _msgid: newMessageId() });
          return;
        }
        const parsed = frameToMessage(data, wholeMessage);
        if (!parsed) {
          listener.closeSession(session, 'MESSAGE_TOO_DEEP');
          return;
        }
        const msg = filterPeerProps(parsed, peerProps) as NodeMessage;
        msg._session = sessionRef(session.info);
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
      listener.on('enforced', (_session, reason) =>
        refusalLog.note(`session closed: ${reason.toLowerCase().replace(/_/g, ' ')}`),
      );
    }
    if (listener && cluster) {
      // Every URL of a seed or sentinel list may carry its own password; the sentinels may have theirs.
      const clusterConfig = config?.cluster.mode !== 'off' ? config?.cluster : undefined;
      const redisUrl = clusterConfig?.redisUrl;
      const secrets = [
        redisUrl,
        ...(redisUrl ?? '').split(',').flatMap((url) => urlSecrets(url.trim())),
        clusterConfig?.sentinelPassword,
      ];
      cluster.on('state', (state) => {
        if (state === 'closed') return;
        if (state === 'degraded') node.warn(text(RED, 'websocket-plus.errors.cluster-unavailable'));
        else if (state === 'ready') node.log('cluster connected');
        attached.setStatus(connectedStatus());
      });
      // ioredis names its next retry delay in the message ("… after 300ms"): one kind of line for all delays.
      cluster.on('connectionError', (err) => {
        const line = `cluster: ${scrubSecrets(err.message, secrets)}`;
        clusterLog.note(line, line.replace(/\d+ ?ms\b/g, 'N ms'));
      });
      cluster.on('deliveryError', (err) => clusterLog.note(`cluster: ${scrubSecrets(err.message, secrets)}`));
    }

    exposeEndpoint(node, attached, (msg: NodeMessage, output: Node) => {
      if (!listener) {
        output.warn(text(RED, 'websocket-plus.errors.listener-unavailable'));
        return;
      }
      const frame = messageToFrame(msg, wholeMessage);
      if (frame === undefined) return;
      const session = msg._session as { id?: unknown } | undefined;
      const problem = deliveryProblem(listener.deliver(session?.id, frame));
      if (problem) output.warn(text(RED, `websocket-plus.errors.${problem}`));
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
    credentials: {
      secret: { type: 'password' },
      redisUrl: { type: 'password' },
      // Like core's MQTT broker: the user is a text credential, the password a password one.
      sentinelUsername: { type: 'text' },
      sentinelPassword: { type: 'password' },
    },
  });
}
