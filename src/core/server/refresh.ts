/**
 * The in-band token refresh frames. A client refreshes its session with the text frame
 * `{"type":"websocket-plus:refresh","token":"<jwt>"}`; the listener answers `refreshed`,
 * `refresh-failed`, and announces `expiring` ahead of the token's exp. Recognising a refresh frame
 * must cost ordinary messages next to nothing: only a text frame that fits the size bound and starts
 * or ends with the type as JSON.stringify writes it (`{"type":"websocket-plus:refresh"` or
 * `"type":"websocket-plus:refresh"}`) is parsed at all. The check reads a few bytes in place; a
 * search through the frame (Buffer.indexOf) cost about 130 ns per ordinary JSON message.
 */

export const REFRESH_TYPE = 'websocket-plus:refresh';
export const REFRESHED_TYPE = 'websocket-plus:refreshed';
export const REFRESH_FAILED_TYPE = 'websocket-plus:refresh-failed';
export const EXPIRING_TYPE = 'websocket-plus:expiring';

/** The refresh-failed reason while another refresh of the same session is being verified. */
export const REFRESH_IN_PROGRESS = 'refresh in progress';
/** Shortest time between two refresh frames of one session, ms; a faster client is closed (1008). */
export const MIN_REFRESH_INTERVAL_MS = 1000;

/**
 * How JSON.stringify starts a refresh frame with the type first; an oversized frame that starts so is
 * consumed, never parsed.
 */
const PREFIX = Buffer.from(`{"type":"${REFRESH_TYPE}"`);
/** ... and ends one with the type last. */
const SUFFIX = Buffer.from(`"type":"${REFRESH_TYPE}"}`);
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
/** The JSON around the token: `{"type":"websocket-plus:refresh","token":""}` plus room to spare. */
const FRAME_OVERHEAD_BYTES = 128;

/** What a candidate frame turned out to be. */
export type RefreshFrame =
  /** Not a refresh frame: an ordinary message for the flow. */
  | undefined
  /** A refresh frame carrying this token. */
  | { token: string; tooLarge?: undefined }
  /** An object of the refresh type without exactly a string token: consumed and answered as malformed. */
  | { token: undefined; tooLarge?: boolean };

/** `pattern` at `offset` of `data`, compared byte by byte (no call into C++ for a few bytes). */
function bytesAt(data: Buffer, pattern: Buffer, offset: number): boolean {
  if (offset < 0 || offset + pattern.length > data.length) return false;
  for (let i = 0; i < pattern.length; i++) if (data[offset + i] !== pattern[i]) return false;
  return true;
}

/**
 * Reads a refresh frame from a text frame, or undefined for anything else. Cheap checks first
 * (first and last byte, size bound `maxTokenLength` plus the JSON around it, the type first or
 * last): only a frame that passes them is parsed.
 */
export function readRefreshFrame(data: Buffer, maxTokenLength: number): RefreshFrame {
  const length = data.length;
  if (length < PREFIX.length + 1 || data[0] !== OPEN_BRACE || data[length - 1] !== CLOSE_BRACE) return undefined;
  if (length > maxTokenLength + FRAME_OVERHEAD_BYTES)
    return bytesAt(data, PREFIX, 0) ? { token: undefined, tooLarge: true } : undefined;
  if (!bytesAt(data, PREFIX, 0) && !bytesAt(data, SUFFIX, length - SUFFIX.length)) return undefined;
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
