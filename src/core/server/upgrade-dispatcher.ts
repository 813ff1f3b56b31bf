/**
 * One `upgrade` handler per HTTP server for all listeners: a map from path to handler. Upgrades
 * for paths nobody registered here are left alone for the server's other `upgrade` listeners
 * (Node-RED's editor comms uses the same server). The handler is removed when the last path is.
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { ConfigError } from '../errors';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Normalised form used as the map key: leading slash, no trailing slash (except "/"). */
export function normalisePath(path: string): string {
  let p = path.startsWith('/') ? path : `/${path}`;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** Joins Node-RED's httpNodeRoot and a listener path as core's websocket nodes do. */
export function joinNodeRoot(httpNodeRoot: string | undefined, path: string): string {
  const root = httpNodeRoot || '/';
  return normalisePath(root + (root.endsWith('/') ? '' : '/') + (path.startsWith('/') ? path.slice(1) : path));
}

/** The pathname of a request URL, or undefined when it cannot be parsed. */
export function requestPathname(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const q = url.indexOf('?');
  const raw = q === -1 ? url : url.slice(0, q);
  if (!raw.startsWith('/')) return undefined;
  return normalisePath(raw);
}

/**
 * 'error' handler for a raw upgrade socket. After the 'upgrade' event Node's HTTP server no longer
 * listens for socket errors: a peer's reset while an answer is written would otherwise be an
 * uncaught exception in a plain http.Server.
 */
export function destroySocket(this: Duplex): void {
  this.destroy();
}

class UpgradeDispatcher {
  private readonly handlers = new Map<string, UpgradeHandler>();
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = requestPathname(req.url);
    const handler = path === undefined ? undefined : this.handlers.get(path);
    if (handler) handler(req, socket, head);
  };

  constructor(private readonly server: Server) {}

  get paths(): string[] {
    return [...this.handlers.keys()];
  }

  register(path: string, handler: UpgradeHandler): void {
    const key = normalisePath(path);
    if (this.handlers.has(key)) throw new ConfigError('PATH_CONFLICT', key);
    if (this.handlers.size === 0) this.server.on('upgrade', this.onUpgrade);
    this.handlers.set(key, handler);
  }

  /** Removes the path if `handler` owns it; removes the server listener with the last path. */
  unregister(path: string, handler: UpgradeHandler): void {
    const key = normalisePath(path);
    if (this.handlers.get(key) !== handler) return;
    this.handlers.delete(key);
    if (this.handlers.size === 0) {
      this.server.removeListener('upgrade', this.onUpgrade);
      dispatchers.delete(this.server);
    }
  }
}

const dispatchers = new WeakMap<Server, UpgradeDispatcher>();

/** The dispatcher of a server, created on first use. */
export function dispatcherFor(server: Server): UpgradeDispatcher {
  let dispatcher = dispatchers.get(server);
  if (!dispatcher) {
    dispatcher = new UpgradeDispatcher(server);
    dispatchers.set(server, dispatcher);
  }
  return dispatcher;
}

/**
 * Answers every upgrade on `path` with `status` and closes the socket: used for a listener whose
 * configuration failed, so its clients learn at once instead of waiting for a timeout. Does
 * nothing when the path is taken (its owner keeps serving). Returns the undo.
 */
export function refuseUpgrades(server: Server, path: string, status = 503): () => void {
  const response = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
  const handler: UpgradeHandler = (_req, socket) => {
    socket.on('error', destroySocket);
    socket.once('finish', () => socket.destroy());
    socket.end(response);
  };
  try {
    dispatcherFor(server).register(path, handler);
  } catch {
    return () => undefined;
  }
  return () => dispatcherFor(server).unregister(path, handler);
}
