import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeAPI } from './red-types';

let english: Record<string, unknown> | undefined;

/** The en-US text of a key, from the catalogue shipped beside the compiled code. */
function englishText(key: string): string | undefined {
  if (!english) {
    try {
      english = JSON.parse(
        fs.readFileSync(path.join(__dirname, '..', '..', 'locales', 'en-US', 'websocket-plus.json'), 'utf8'),
      );
    } catch {
      english = {};
    }
  }
  let node: unknown = english;
  for (const part of key.split('.'))
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined;
  return typeof node === 'string' ? node : undefined;
}

/**
 * The one way the node files translate: the runtime's text of a catalogue key (`websocket-plus.*`),
 * or the en-US text when the runtime has no catalogue for it (RED._ then answers the key itself,
 * as node-red-node-test-helper always does).
 */
export function text(RED: NodeAPI, key: string, substitutions?: Record<string, unknown>): string {
  const translated = RED._(key, substitutions);
  if (translated && translated !== key) return translated;
  const fallback = englishText(key);
  if (fallback === undefined) return key;
  // Node-RED's interpolation: __name__.
  return fallback.replace(/__(\w+)__/g, (whole, name: string) =>
    substitutions && name in substitutions ? String(substitutions[name]) : whole,
  );
}
