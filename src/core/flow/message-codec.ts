/**
 * Converts between WebSocket frames and Node-RED messages, as core's websocket nodes do, without
 * their crash on `null`: any JSON value that is not an object becomes the payload.
 */

import type { SessionInfo } from '../server/listener';

export type OutgoingFrame = Buffer | string;

/** Properties a peer may never set on a message: routing and Node-RED's own bookkeeping. */
const RESERVED = ['_session', '_msgid'];

/**
 * Deepest nesting of objects and arrays a peer's JSON may have in entire-message mode (the value
 * itself is level 1). Node-RED copies a message for every further wire and recipient with a
 * recursive clone, and the debug node encodes it recursively: a few kilobytes of `[[[[…` parse
 * fine (JSON.parse is iterative) and then overflow the stack there. Real messages stay far below.
 */
export const MAX_MESSAGE_DEPTH = 64;

/** True when `value` nests objects/arrays deeper than `max` levels; iterative, so any depth is safe. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [object, number];
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * A message from an incoming frame (the caller adds `_session`), or undefined when the frame is
 * JSON nested deeper than `maxDepth` (entire-message mode; the caller closes the session).
 */
export function frameToMessage(
  data: Buffer | string,
  wholeMessage: boolean,
  maxDepth = MAX_MESSAGE_DEPTH,
): Record<string, unknown> | undefined {
  if (!wholeMessage || typeof data !== 'string') return { payload: data };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { payload: data };
  }
  if (nestsDeeperThan(parsed, maxDepth)) return undefined;
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { payload: parsed };
  const msg = parsed as Record<string, unknown>;
  for (const key of RESERVED) delete msg[key];
  // JSON.parse makes "__proto__" an own property; drop it so no later merge can use it.
  if (Object.prototype.hasOwnProperty.call(msg, '__proto__')) delete msg['__proto__'];
  return msg;
}

/** Core's RED.util.ensureString: Buffers stay binary, objects become JSON, the rest a string. */
function payloadToFrame(payload: unknown): OutgoingFrame {
  if (Buffer.isBuffer(payload)) return payload;
  if (typeof payload === 'string') return payload;
  if (payload !== null && typeof payload === 'object') return JSON.stringify(payload);
  return String(payload);
}

/**
 * The frame for an outgoing message, or undefined when there is nothing to send (payload mode and
 * no payload). Entire-message mode sends the message as JSON without `_session`.
 */
export function messageToFrame(msg: Record<string, unknown>, wholeMessage: boolean): OutgoingFrame | undefined {
  if (wholeMessage) {
    const { _session, ...rest } = msg;
    void _session;
    return JSON.stringify(rest);
  }
  if (!Object.prototype.hasOwnProperty.call(msg, 'payload')) return undefined;
  return payloadToFrame(msg.payload);
}

/**
 * A message's own copy of a session's info (`msg._session`): the flow may change it, the record may
 * not change. Built field by field: spreading the frozen record costs several times as much.
 */
export function sessionRef(info: Readonly<SessionInfo>): SessionInfo {
  return {
    type: info.type,
    id: info.id,
    tenantId: info.tenantId,
    subject: info.subject,
    authStatus: info.authStatus,
    routingScope: info.routingScope,
  };
}
