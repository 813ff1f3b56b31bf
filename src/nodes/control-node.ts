/**
 * `websocket-plus control` (ws.control+): lists, counts and closes the sessions of a listener, or
 * reconnects / closes a client's one connection, as `msg.action` asks. The work is done in core
 * (session-control, OutboundConnection); this is the wiring to the selected config node.
 */
import { ControlError, messageKey } from '../core/errors';
import {
  closeFrameFrom,
  closeSelectionFrom,
  closeSessions,
  countSessions,
  filterFrom,
  listSessions,
} from '../core/server/session-control';
import type { WebSocketListener } from '../core/server/listener';
import { acquireClusterControl, releaseClusterControl } from '../core/cluster/cluster-control';
import type { OutboundConnection } from '../core/client/outbound-connection';
import { text } from './i18n';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './red-types';

/** How long the status shows the last action's result. */
const STATUS_MS = 3000;

const LISTENER_ACTIONS = 'list, count, close';
const CLIENT_ACTIONS = 'token, reconnect, close';

type Target = { kind: 'listener'; listener: WebSocketListener } | { kind: 'client'; connection: OutboundConnection };

export function registerControl(RED: NodeAPI): void {
  function WebSocketPlusControlNode(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const clientId = typeof def.client === 'string' ? def.client : '';
    const serverId = typeof def.server === 'string' ? def.server : '';
    let statusTimer: NodeJS.Timeout | undefined;

    const describe = (err: ControlError): string => {
      const key = messageKey('control', err.code);
      const translated = text(RED, key);
      return translated !== key ? `${translated} (${err.message})` : err.message;
    };
    const showBriefly = (statusText: string, fill: 'green' | 'yellow' | 'red' = 'green'): void => {
      node.status({ fill, shape: 'dot', text: statusText });
      if (statusTimer) clearTimeout(statusTimer);
      statusTimer = setTimeout(() => {
        statusTimer = undefined;
        node.status({});
      }, STATUS_MS);
      statusTimer.unref();
    };

    /** Looked up at each message: a redeployed config node is a new object. Client first, as ws.in+ does. */
    const target = (): Target => {
      if (clientId) {
        const connection = (RED.nodes.getNode(clientId) as { connection?: OutboundConnection } | null)?.connection;
        if (connection) return { kind: 'client', connection };
        throw new ControlError('TARGET_MISSING');
      }
      const listener = serverId
        ? (RED.nodes.getNode(serverId) as { listener?: WebSocketListener } | null)?.listener
        : undefined;
      if (listener) return { kind: 'listener', listener };
      throw new ControlError('TARGET_MISSING');
    };

    // A clustered listener: list, count and close reach every instance (see cluster-control).
    const startListener =
      serverId && !clientId
        ? (RED.nodes.getNode(serverId) as { listener?: WebSocketListener } | null)?.listener
        : undefined;
    const cluster = startListener ? acquireClusterControl(startListener) : undefined;

    const onListener = async (listener: WebSocketListener, action: unknown, msg: NodeMessage): Promise<string> => {
      const clustered = listener === startListener ? cluster : undefined;
      if (action === 'list') {
        const filter = filterFrom(msg);
        let sessions;
        if (clustered) {
          const answer = await clustered.list(filter);
          sessions = answer.result;
          msg.partial = answer.partial;
        } else {
          sessions = listSessions(listener, filter);
        }
        msg.payload = sessions;
        return text(RED, 'websocket-plus.control.status.listed', {
          count: sessions.length,
        });
      }
      if (action === 'count') {
        const filter = filterFrom(msg);
        let count;
        if (clustered) {
          const answer = await clustered.count(filter);
          count = answer.result;
          msg.partial = answer.partial;
        } else {
          count = countSessions(listener, filter);
        }
        msg.payload = count;
        return text(RED, 'websocket-plus.control.status.counted', { count: count.total });
      }
      if (action === 'close') {
        // Both checked before anything is closed.
        const selection = closeSelectionFrom(msg);
        const frame = closeFrameFrom(msg);
        let result;
        if (clustered) {
          const answer = await clustered.close(selection, frame);
          result = answer.result;
          msg.partial = answer.partial;
        } else {
          result = closeSessions(listener, selection, frame);
        }
        msg.payload = result;
        return text(RED, 'websocket-plus.control.status.closed', { count: result.closed });
      }
      throw new ControlError('ACTION_UNKNOWN', `${String(action)} (a listener takes ${LISTENER_ACTIONS})`);
    };

    const onClient = (connection: OutboundConnection, action: unknown, msg: NodeMessage): string => {
      if (action === 'token') {
        const token = msg.token;
        if (typeof token !== 'string' || token === '') throw new ControlError('TOKEN_INVALID');
        const sent = connection.setToken(token);
        // The token is a secret: it does not travel on with the message.
        delete msg.token;
        msg.payload = { replaced: true, sent };
        return text(RED, 'websocket-plus.control.status.token');
      }
      if (action === 'reconnect') {
        connection.reconnect();
        msg.payload = { reconnecting: true };
        return text(RED, 'websocket-plus.control.status.reconnecting');
      }
      if (action === 'close') {
        const frame = closeFrameFrom(msg);
        const closed = connection.disconnect(frame.code, frame.reason) ? 1 : 0;
        msg.payload = { closed };
        return text(RED, 'websocket-plus.control.status.closed', { count: closed });
      }
      throw new ControlError('ACTION_UNKNOWN', `${String(action)} (a client takes ${CLIENT_ACTIONS})`);
    };

    const run = async (msg: NodeMessage): Promise<string> => {
      const found = target();
      return found.kind === 'listener'
        ? onListener(found.listener, msg.action, msg)
        : onClient(found.connection, msg.action, msg);
    };

    const refuse = (err: unknown, done: (err?: Error) => void): void => {
      if (!(err instanceof ControlError)) {
        done(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const problem = describe(err);
      if (err.code === 'ACTION_UNKNOWN' || err.code === 'TARGET_MISSING') {
        // A flow that cannot work as wired: an error (catchable by a catch node).
        showBriefly(problem, 'red');
        done(new Error(problem));
        return;
      }
      // A request that names nothing or carries a bad code / reason: nothing was closed.
      showBriefly(problem, 'yellow');
      node.warn(problem);
      done();
    };

    node.on('input', (msg: NodeMessage, send: (msg: NodeMessage) => void, done: (err?: Error) => void) => {
      run(msg).then(
        (result) => {
          showBriefly(result);
          // The same message goes on: msg.topic, msg.res and the rest survive; only payload (and
          // partial, in cluster mode) are set.
          send(msg);
          done();
        },
        (err: unknown) => refuse(err, done),
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      if (statusTimer) clearTimeout(statusTimer);
      statusTimer = undefined;
      node.status({});
      if (!startListener || !cluster) {
        done();
        return;
      }
      releaseClusterControl(startListener).then(
        () => done(),
        () => done(),
      );
    });
  }

  RED.nodes.registerType('websocket-plus control', WebSocketPlusControlNode);
}
