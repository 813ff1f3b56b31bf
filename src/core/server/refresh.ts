/**
 * The in-band token refresh frames. A client refreshes its session with the text frame
 * `{"type":"websocket-plus:refresh","token":"<jwt>"}`; the listener answers `refreshed`,
 * `refresh-failed`, and announces `expiring` ahead of the token's exp. Recognising a refresh frame
 * must cost ordinary messages next to nothing: only a text frame that starts with `{`, fits the
 * size bound and names the refresh type is parsed at all.
 */

export const REFRESH_TYPE = 'websocket-plus:refresh';
export const REFRESHED_TYPE = 'websocket-plus:refreshed';
export const REFRESH_FAILED_TYPE = 'websocket-plus:refresh-failed';
export const EXPIRING_TYPE = 'websocket-plus:expiring';

/** The refresh-failed reason while another refresh of the same session is being verified. */
export const REFRESH_IN_PROGRESS = 'refresh in progress';
/** Shortest time between two refresh frames of one session, ms; a faster client is closed (1008). */
export const MIN_REFRESH_INTERVAL_MS = 1000;

const MARKER = Buffer.from(`"${REFRESH_TYPE}"`);
/** How JSON.stringify starts a refresh frame: an oversized frame that starts so is consumed, never parsed. */
const CANONICAL_PREFIX = Buffer.from(`{"type":"${REFRESH_TYPE}"`);
const OPEN_BRACE = 0x7b;
/** The JSON around the token: `{"type":"websocket-plus:refresh","token":""}` plus room for whitespace. */
const FRAME_OVERHEAD_BYTES = 128;

/** What a candidate frame turned out to be. */
export type RefreshFrame =
  /** Not a refresh frame: an ordinary message for the flow. */
  | undefined
  /** A refresh frame carrying this token. */
  | { token: string; tooLarge?: undefined }
  /** An object of the refresh type without exactly a string token: consumed and answered as malformed. */
  | { token: undefined; tooLarge?: boolean };

/**
 * Reads a refresh frame from a text frame, or undefined for anything else. Cheap checks first
 * (first byte, size bound `maxTokenLength` plus the JSON around it, the type's name in the bytes):
 * only a frame that passes them is parsed.
 */
export function readRefreshFrame(data: Buffer, maxTokenLength: number): RefreshFrame {
  if (data.length < MARKER.length || data[0] !== OPEN_BRACE) return undefined;
  if (data.length > maxTokenLength + FRAME_OVERHEAD_BYTES) {
    const canonical = data.compare(CANONICAL_PREFIX, 0, CANONICAL_PREFIX.length, 0, CANONICAL_PREFIX.length) === 0;
    return canonical ? { token: undefined, tooLarge: true } : undefined;
  }
  if (data.indexOf(MARKER) === -1) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const object = parsed as Record<string, unknown>;
  if (object.type !== REFRESH_TYPE) return undefined;
  const keys = Object.keys(object);
  const exact = keys.length === 2 && typeof object.token === 'string' && object.token !== '';
  return { token: exact ? (object.token as string) : undefined };
}

/** Seconds since the epoch of an epoch-ms time, or null when there is none. */
function seconds(epochMs: number | undefined): number | null {
  return epochMs === undefined ? null : Math.floor(epochMs / 1000);
}

export function refreshedFrame(expiresAt: number | undefined): string {
  return JSON.stringify({ type: REFRESHED_TYPE, exp: seconds(expiresAt) });
}

export function refreshFailedFrame(reason: string): string {
  return JSON.stringify({ type: REFRESH_FAILED_TYPE, reason });
}

export function expiringFrame(expiresAt: number): string {
  return JSON.stringify({ type: EXPIRING_TYPE, exp: seconds(expiresAt) });
}

/** Outcome of one refresh frame (the metrics count them by it). */
export type RefreshResult = 'refreshed' | 'failed' | 'identity_changed' | 'rate_limited';
