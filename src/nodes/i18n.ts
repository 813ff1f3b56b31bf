import type { NodeAPI } from './red-types';

/**
 * Text of a catalogue key (`websocket-plus.*`), or `fallback` when the runtime has no catalogue
 * for it (RED._ then answers the key itself, as node-red-node-test-helper always does).
 */
export function text(RED: NodeAPI, key: string, fallback: string, substitutions?: Record<string, unknown>): string {
  const translated = RED._(key, substitutions);
  return translated && translated !== key ? translated : fallback;
}
