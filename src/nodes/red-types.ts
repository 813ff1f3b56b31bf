/**
 * The small part of Node-RED's runtime API these nodes use. Declared here rather than pulling in
 * community type packages, so the compiled code depends on nothing but the runtime it runs in.
 */
import type { Server } from 'node:http';

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type NodeMessage = Record<string, unknown> & { _msgid?: string };

export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
  [key: string]: unknown;
}

export interface Node {
  id: string;
  type: string;
  name?: string;
  credentials?: Record<string, string | undefined>;
  send(msg: NodeMessage | NodeMessage[]): void;
  status(status: NodeStatus): void;
  log(msg: string): void;
  warn(msg: unknown): void;
  error(err: unknown, msg?: NodeMessage): void;
  debug(msg: unknown): void;
  on(
    event: 'input',
    handler: (msg: NodeMessage, send: (msg: NodeMessage) => void, done: (err?: Error) => void) => void,
  ): void;
  on(event: 'close', handler: (removed: boolean, done: () => void) => void): void;
}

export interface NodeAPI {
  nodes: {
    createNode(node: object, def: NodeDef): void;
    getNode(id: string): unknown;
    registerType<T extends Node>(
      type: string,
      ctor: (this: T, def: NodeDef) => void,
      opts?: { credentials?: Record<string, { type: 'text' | 'password' }> },
    ): void;
  };
  settings: Record<string, unknown> & {
    httpNodeRoot?: string | false;
    proxyOptions?: Record<string, string | undefined>;
  };
  server: Server | undefined;
  util: { cloneMessage<T>(msg: T): T };
  _(key: string, substitutions?: Record<string, unknown>): string;
}
