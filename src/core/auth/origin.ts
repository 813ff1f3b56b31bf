/**
 * Cross-Site WebSocket Hijacking defence: browsers always send `Origin` on a WebSocket handshake,
 * so a listener with an origin list refuses any browser page not on it. A handshake without
 * `Origin` comes from a non-browser client (which could forge any Origin anyway) and is allowed;
 * such clients still need a valid token.
 */
export function normaliseOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin.trim());
    if (url.origin === 'null') return undefined;
    return url.origin.toLowerCase();
  } catch {
    return undefined;
  }
}

export function isOriginAllowed(origin: string | undefined, allowed: readonly string[] | undefined): boolean {
  if (!allowed || allowed.length === 0) return true;
  if (origin === undefined) return true;
  const normalised = normaliseOrigin(origin);
  if (normalised === undefined) return false;
  return allowed.some((entry) => normaliseOrigin(entry) === normalised);
}
