/**
 * What ws.in+ and ws.out+ need from their config node, whichever it is (listener or client): a
 * place to register, a way to send, and the connection count shown in their status.
 */
import { randomFillSync } from 'node:crypto';
import type { Node, NodeMessage, NodeStatus } from './red-types';

export interface InputOptions {
  /** Also emit `msg.event` "connect" / "disconnect" messages. */
  events: boolean;
}

export interface Endpoint {
  registerInput(node: Node, options: InputOptions): void;
  deregisterInput(node: Node): void;
  registerOutput(node: Node): void;
  deregisterOutput(node: Node): void;
  /** Sends a flow message from a ws.out+ node; problems are reported on that node. */
  sendFromFlow(msg: NodeMessage, node: Node): void;
}

export function isEndpoint(value: unknown): value is Endpoint {
  return (
    !!value &&
    typeof (value as Endpoint).registerInput === 'function' &&
    typeof (value as Endpoint).sendFromFlow === 'function'
  );
}

const STATUS_COALESCE_MS = 100;

/**
 * Message ids made per batch (one random fill and one hex encoding for all of them). randomFillSync
 * costs about 5 µs a call whatever its size: 256 ids a batch bring it to about 30 ns an id (64: 85 ns).
 */
const IDS_PER_BATCH = 256;
const idBytes = Buffer.alloc(8 * IDS_PER_BATCH);
let idHex = '';
let idNext = IDS_PER_BATCH;

/**
 * A message id in Node-RED's format (16 hex digits, 64 random bits). Node-RED gives a message
 * without `_msgid` one in `send` from eight Math.random() calls (about 0.5 µs); this one is a
 * slice of a hex string encoded from random bytes once per batch.
 */
export function newMessageId(): string {
  if (idNext === IDS_PER_BATCH) {
    idHex = randomFillSync(idBytes).toString('hex');
    idNext = 0;
  }
  const start = idNext++ * 16;
  return idHex.slice(start, start + 16);
}

/**
 * A listener's status: green with its connection count, yellow while its cluster is degraded; a dot once
 * someone is connected.
 */
export function connectionCountStatus(count: number, degraded: boolean, text: string): NodeStatus {
  return { fill: degraded ? 'yellow' : 'green', shape: count > 0 ? 'dot' : 'ring', text };
}

/** A failed deploy, shown on every attached node. */
export function failureStatus(text: string): NodeStatus {
  return { fill: 'red', shape: 'ring', text };
}

/** Ends a config node's close handler once `closing` settles; a failure is reported, never thrown. */
export function finishClose(node: Node, closing: Promise<void> | undefined, done: () => void): void {
  if (!closing) {
    done();
    return;
  }
  closing.then(done, (err: unknown) => {
    node.error(err);
    done();
  });
}

/** Makes a config node an Endpoint whose in/out nodes are kept in `attached`. */
export function exposeEndpoint(
  node: Node & Endpoint,
  attached: AttachedNodes,
  sendFromFlow: Endpoint['sendFromFlow'],
): void {
  node.registerInput = (input: Node, options: InputOptions) => attached.addInput(input, options);
  node.deregisterInput = (input: Node) => attached.removeInput(input);
  node.registerOutput = (output: Node) => attached.addOutput(output);
  node.deregisterOutput = (output: Node) => attached.removeOutput(output);
  node.sendFromFlow = sendFromFlow;
}

/**
 * The in/out nodes attached to one endpoint. Messages go to every input; status updates are
 * coalesced so a burst of connects costs one status update per node, not one per connect.
 */
export class AttachedNodes {
  private readonly inputs = new Map<Node, InputOptions>();
  /** The only input, while there is exactly one. */
  private single: { node: Node; options: InputOptions } | undefined;
  private readonly outputs = new Set<Node>();
  private status: NodeStatus = {};
  private pendingStatus: NodeJS.Timeout | undefined;

  constructor(private readonly clone: <T>(msg: T) => T) {}

  addInput(node: Node, options: InputOptions): void {
    this.inputs.set(node, options);
    this.single = this.inputs.size === 1 ? { node, options } : undefined;
    node.status(this.status);
  }

  removeInput(node: Node): void {
    this.inputs.delete(node);
    const [only] = this.inputs.size === 1 ? this.inputs : [];
    this.single = only ? { node: only[0], options: only[1] } : undefined;
  }

  addOutput(node: Node): void {
    this.outputs.add(node);
    node.status(this.status);
  }

  removeOutput(node: Node): void {
    this.outputs.delete(node);
  }

  get hasEventInputs(): boolean {
    for (const options of this.inputs.values()) if (options.events) return true;
    return false;
  }

  /**
   * Sends to every input (events only to inputs that asked for them); later inputs get a copy. The
   * copies are made before anything is sent: a message that cannot be copied reaches no node.
   */
  emit(msg: NodeMessage, isEvent = false): void {
    if (msg._msgid === undefined) msg._msgid = newMessageId();
    const single = this.single;
    if (single) {
      // The usual case, one ws.in+ node: no copy, no arrays.
      if (!isEvent || single.options.events) single.node.send(msg);
      return;
    }
    const targets: Node[] = [];
    for (const [node, options] of this.inputs) if (!isEvent || options.events) targets.push(node);
    const messages = targets.map((_, i) => (i === 0 ? msg : this.clone(msg)));
    targets.forEach((node, i) => node.send(messages[i]));
  }

  /** Shows `status` on every attached node now. */
  setStatus(status: NodeStatus): void {
    if (this.pendingStatus) clearTimeout(this.pendingStatus);
    this.pendingStatus = undefined;
    this.status = status;
    for (const node of this.inputs.keys()) node.status(status);
    for (const node of this.outputs) node.status(status);
  }

  /** Shows the status computed by `make` shortly, once for a burst of changes. */
  setStatusSoon(make: () => NodeStatus): void {
    if (this.pendingStatus) return;
    this.pendingStatus = setTimeout(() => {
      this.pendingStatus = undefined;
      this.setStatus(make());
    }, STATUS_COALESCE_MS);
    this.pendingStatus.unref();
  }

  clear(): void {
    if (this.pendingStatus) clearTimeout(this.pendingStatus);
    this.pendingStatus = undefined;
  }
}
