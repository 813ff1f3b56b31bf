/**
 * Migration aid: rewrites a flow that uses Node-RED's core websocket nodes to websocket-plus types.
 * Pure: takes a parsed flow and returns a new one plus a report; the input is never modified.
 *
 * Every property of a core node is kept (ids, wires, positions, path, wholemsg, server, client,
 * tls, hb, subprotocol, headers, ...). Properties the core nodes do not have get safe defaults:
 * a migrated listener verifies HS256 tokens, so it refuses every connection until a shared secret
 * is set (fail closed), and replies go to the sending session only, the closest match to core's
 * "reply to the client that sent the message".
 */

import { MigrationError } from '../errors';
import { CLIENT_DEFAULTS, LISTENER_DEFAULTS } from './defaults';

export type FlowNode = Record<string, unknown> & { id?: unknown; type?: unknown };

/** A flow as Node-RED stores it (an array of nodes) or as the admin API v2 returns it. */
export type FlowInput = FlowNode[] | { flows: FlowNode[]; [key: string]: unknown };

export type ChangeKind = 'type' | 'default' | 'note';

export interface MigrationChange {
  kind: ChangeKind;
  /** Id of the node concerned. */
  id: string;
  /** The node's type after migration. */
  nodeType: string;
  property?: string;
  from?: unknown;
  to?: unknown;
  /** One line for humans. */
  message: string;
}

export interface MigrationResult<T extends FlowInput = FlowInput> {
  flow: T;
  changes: MigrationChange[];
}

/** Core type → websocket-plus type. */
export const TYPE_MAP: Readonly<Record<string, string>> = Object.freeze({
  'websocket in': 'websocket-plus in',
  'websocket out': 'websocket-plus out',
  'websocket-listener': 'websocket-plus-listener',
  'websocket-client': 'websocket-plus-client',
});

/** Properties a migrated node gets when it does not have them, per new type (order = flow JSON order). */
export const MIGRATION_DEFAULTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = Object.freeze({
  // Replies go to the sending session only: the closest match to core's "reply to the sender".
  'websocket-plus-listener': Object.freeze({ ...LISTENER_DEFAULTS, scope: 'session' }),
  // The core client sends no token; it had no message size limit, a migrated one gets the default.
  'websocket-plus-client': Object.freeze({ ...CLIENT_DEFAULTS, authMode: 'none' }),
  'websocket-plus in': Object.freeze({
    name: '',
    server: '',
    client: '',
    events: false,
  }),
  'websocket-plus out': Object.freeze({
    name: '',
    server: '',
    client: '',
  }),
});

function isNodeArray(value: unknown): value is FlowNode[] {
  return Array.isArray(value) && value.every((n) => n !== null && typeof n === 'object' && !Array.isArray(n));
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Checks that `input` looks like a Node-RED flow; throws MigrationError with a reason if not. */
function flowNodesOf(input: unknown): FlowNode[] {
  let nodes: unknown = input;
  if (input !== null && typeof input === 'object' && !Array.isArray(input) && 'flows' in input) {
    nodes = (input as { flows: unknown }).flows;
  }
  if (!Array.isArray(nodes)) {
    throw new MigrationError('FLOW_INVALID', 'expected a JSON array of nodes (or an object with a "flows" array)');
  }
  if (!isNodeArray(nodes)) {
    throw new MigrationError('FLOW_INVALID', 'every element must be a node object');
  }
  nodes.forEach((n, i) => {
    if (typeof n.type !== 'string' || n.type === '') {
      throw new MigrationError('FLOW_INVALID', `element ${i} has no "type"`);
    }
    if (typeof n.id !== 'string' || n.id === '') {
      throw new MigrationError('FLOW_INVALID', `element ${i} (${n.type}) has no "id"`);
    }
  });
  return nodes;
}

function show(value: unknown): string {
  return JSON.stringify(value);
}

/** Rebuilds `node` with the new type in place of the old one, keeping property order. */
function withType(node: FlowNode, newType: string): FlowNode {
  const out: FlowNode = {};
  for (const [key, value] of Object.entries(node)) out[key] = key === 'type' ? newType : value;
  return out;
}

function normalisedPath(path: unknown): string {
  const p = typeof path === 'string' ? path.trim() : '';
  return p === '' ? '' : p.startsWith('/') ? p : `/${p}`;
}

/**
 * Rewrites core websocket nodes to websocket-plus nodes. Returns the new flow (same shape as the
 * input: array, or object with `flows`) and one change entry per renamed type, per property added,
 * and per note the user should read (e.g. "set a secret").
 */
export function migrateFlow<T extends FlowInput>(input: T): MigrationResult<T> {
  const nodes = flowNodesOf(input);
  const changes: MigrationChange[] = [];
  const migratedIds = new Set<string>();

  const migrated = nodes.map((original) => {
    const oldType = original.type as string;
    const newType = TYPE_MAP[oldType];
    if (!newType) return clone(original);
    const id = original.id as string;
    migratedIds.add(id);
    const node = withType(clone(original), newType);
    changes.push({
      kind: 'type',
      id,
      nodeType: newType,
      property: 'type',
      from: oldType,
      to: newType,
      message: `${id}: type "${oldType}" -> "${newType}"`,
    });
    const defaults = MIGRATION_DEFAULTS[newType];
    for (const [property, value] of Object.entries(defaults)) {
      if (Object.prototype.hasOwnProperty.call(node, property)) continue;
      node[property] = clone(value);
      changes.push({
        kind: 'default',
        id,
        nodeType: newType,
        property,
        to: value,
        message: `${id}: ${property} = ${show(value)} (new property, safe default)`,
      });
    }
    return node;
  });

  // Notes that need the user's attention, once per node.
  const pathsInUse = new Map<string, string[]>();
  for (const node of migrated) {
    const id = node.id as string;
    if (node.type === 'websocket-plus-listener') {
      const path = normalisedPath(node.path);
      pathsInUse.set(path, [...(pathsInUse.get(path) ?? []), id]);
      if (migratedIds.has(id) && node.authMode === 'hs256') {
        changes.push({
          kind: 'note',
          id,
          nodeType: 'websocket-plus-listener',
          message:
            `${id}: listener ${show(path)} refuses every connection until you set its Shared secret ` +
            '(or choose another JWT mode) in the editor',
        });
      }
      if (path.includes('/debug/ws')) {
        changes.push({
          kind: 'note',
          id,
          nodeType: 'websocket-plus-listener',
          message:
            `${id}: listener path ${show(path)} contains /debug/ws, which websocket-plus refuses; ` +
            'choose another path',
        });
      }
    } else if (node.type === 'websocket-plus-client' && migratedIds.has(id)) {
      changes.push({
        kind: 'note',
        id,
        nodeType: 'websocket-plus-client',
        message:
          `${id}: client ${show(node.path)} sends no token (Authentication: None), as the core client did; ` +
          'its upgrade headers are kept',
      });
    }
  }
  for (const [path, ids] of pathsInUse) {
    if (ids.length > 1) {
      for (const id of ids) {
        changes.push({
          kind: 'note',
          id,
          nodeType: 'websocket-plus-listener',
          message:
            `${id}: listener path ${show(path)} is used by ${ids.length} listeners (${ids.join(', ')}); ` +
            'only the first one deployed will start',
        });
      }
    }
  }

  let flow: FlowInput;
  if (Array.isArray(input)) {
    flow = migrated;
  } else {
    flow = { ...clone(input), flows: migrated };
  }
  return { flow: flow as unknown as T, changes };
}

/** The report as text lines: a summary, then the changes of each node. */
export function formatReport(changes: readonly MigrationChange[]): string[] {
  const renamed = changes.filter((c) => c.kind === 'type');
  if (renamed.length === 0) return ['No core websocket nodes found: nothing to migrate.'];
  const counts = new Map<string, number>();
  for (const c of renamed)
    counts.set(`${String(c.from)} -> ${String(c.to)}`, (counts.get(`${String(c.from)} -> ${String(c.to)}`) ?? 0) + 1);
  const lines = [`Migrated ${renamed.length} node(s):`];
  for (const [rename, count] of counts) lines.push(`  ${count} x ${rename}`);
  const defaults = changes.filter((c) => c.kind === 'default');
  if (defaults.length > 0) {
    lines.push(`New properties set to safe defaults (${defaults.length}):`);
    for (const c of defaults) lines.push(`  ${c.message}`);
  }
  const notes = changes.filter((c) => c.kind === 'note');
  if (notes.length > 0) {
    lines.push('Please check:');
    for (const c of notes) lines.push(`  ! ${c.message}`);
  }
  return lines;
}
