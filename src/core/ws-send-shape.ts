/**
 * Keeps ws 8's per-frame options object shape alive for the life of the process.
 *
 * ws 8's `Sender#send` builds an options object for every frame (`{ [kByteLength]: …, fin, … }`).
 * Optimized, V8 never allocates it, so no live object holds the hidden classes (maps) of that
 * object, and the optimized code refers to them only weakly: the next full garbage collection
 * frees the maps and throws the code away ("deoptimization, reason: weak objects"). Compiled
 * again, the code meets new maps at the same sites, their inline caches become polymorphic and
 * then megamorphic, and every frame is then built in V8's runtime: 0.6–1.1 µs per `send` instead
 * of about 0.1 µs (a null-socket loop with a GC between batches), about 9,500 more instructions
 * per delivered frame in the listener (bench/README.md, "ws 8's send path after a full garbage
 * collection").
 *
 * One frame that never gets its data keeps one such object, and with it the maps, alive: a blob
 * whose contents never arrive, sent on a Sender of its own that has no socket. ws keeps the
 * frame's options in the closure that waits for the blob. Nothing is ever written; the cost is
 * a few hundred bytes, once per process.
 */
import { WebSocket } from 'ws';

interface SenderLike {
  send(data: unknown, options: Record<string, unknown>, cb?: (err?: Error) => void): void;
}
type SenderClass = new (socket: unknown, extensions?: unknown, generateMask?: unknown) => SenderLike;

/** The held frame: its blob's promise never settles and keeps ws's closure (and its options) alive. */
let held: { sender: SenderLike; contents: Promise<ArrayBuffer> } | undefined;

/** Holds one frame's options shape; a second call does nothing. Returns whether a frame is held. */
export function keepWsSendShape(): boolean {
  if (held) return true;
  const Sender = (WebSocket as unknown as { Sender?: SenderClass }).Sender;
  if (typeof Sender !== 'function' || typeof Blob === 'undefined') return false;
  const contents = new Promise<ArrayBuffer>(() => undefined);
  // ws recognises a blob by these members (its isBlob()); only arrayBuffer() is ever called.
  const blob = {
    size: 0,
    type: '',
    [Symbol.toStringTag]: 'Blob',
    arrayBuffer: () => contents,
    stream: () => undefined,
  };
  const noSocket = { destroyed: false, cork: () => undefined, uncork: () => undefined, write: () => true };
  const sender = new Sender(noSocket);
  // The options WebSocket#send hands its Sender for a server's text frame.
  sender.send(blob, { binary: false, mask: false, compress: false, fin: true });
  held = { sender, contents };
  return true;
}
