/**
 * `peerProps`: which top-level properties of a peer's JSON object may reach the flow in
 * entire-message mode. Many nodes read control properties from `msg` (`url`, `method`, `headers`,
 * `filename`, `reset`, `delay`, ...), so a peer that may set any property can steer nodes further
 * down the flow. `"*"` keeps every property, as Node-RED's core websocket nodes do; a list such as
 * `"payload,topic"` keeps only those, and every other property is dropped without a trace.
 *
 * The list is parsed once, at deploy; the filter then costs nothing for `"*"` and O(listed names)
 * otherwise, whatever the peer sends.
 */
import { ConfigError } from '../errors';

/** The parsed `peerProps`: `null` keeps every property ("*"); otherwise the names kept, in order. */
export type PeerProps = readonly string[] | null;

/** Never taken from a peer, whatever `peerProps` says: routing, Node-RED's bookkeeping, the prototype. */
export const NEVER_FROM_PEER: readonly string[] = Object.freeze(['_session', '_msgid', '__proto__']);

/** A top-level property name: letters, digits, `_` and `$`, not starting with a digit (what `msg.<name>` can reach). */
const PROPERTY_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

const EXAMPLE = 'use "*" or property names separated by commas, e.g. "payload,topic"';

/**
 * Parses the flow property. Absent or empty means `"*"` (flows saved before the property existed
 * keep their behaviour). Spaces around names are ignored and a repeated name counts once. Refused
 * with a ConfigError: an empty entry, `"*"` next to names, a name that is not a top-level property
 * name (a dot would name a nested property), and a name a peer may never set: `_session`, `_msgid`
 * and any member of `Object.prototype` (`__proto__`, `constructor`, `toString`, ...).
 */
export function parsePeerProps(value: unknown): PeerProps {
  const raw =
    typeof value === 'string' ? value.trim() : value === undefined || value === null ? '' : String(value).trim();
  if (raw === '' || raw === '*') return null;
  const names: string[] = [];
  for (const entry of raw.split(',')) {
    const name = entry.trim();
    if (name === '') throw new ConfigError('OPTION_INVALID', `peerProps: empty entry; ${EXAMPLE}`);
    if (name === '*')
      throw new ConfigError('OPTION_INVALID', `peerProps: "*" cannot be combined with names; ${EXAMPLE}`);
    if (!PROPERTY_NAME.test(name)) {
      throw new ConfigError(
        'OPTION_INVALID',
        `peerProps: "${name}" is not a top-level property name (letters, digits, _ and $, not starting with a digit)`,
      );
    }
    if (isReservedPeerProp(name))
      throw new ConfigError('OPTION_INVALID', `peerProps: "${name}" can never be set by a peer`);
    if (!names.includes(name)) names.push(name);
  }
  return Object.freeze(names);
}

/** True for a name `peerProps` may not list (see parsePeerProps). */
export function isReservedPeerProp(name: string): boolean {
  return NEVER_FROM_PEER.includes(name) || name in Object.prototype;
}

/**
 * The message a peer's frame may put into the flow. With `"*"` (`null`) it is `msg` itself; with a
 * list it is a new plain object holding only the listed own properties of `msg`. Meant for the
 * message of an entire-message frame, before `_session` is set.
 */
export function filterPeerProps<T extends Record<string, unknown>>(msg: T, allowed: PeerProps | undefined): T {
  if (!allowed) return msg;
  const kept: Record<string, unknown> = {};
  // The names are validated at deploy: none can reach the prototype, so plain assignment is safe.
  for (const name of allowed) if (Object.prototype.hasOwnProperty.call(msg, name)) kept[name] = msg[name];
  return kept as T;
}
