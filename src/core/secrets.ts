/**
 * Keeping secrets (tokens, passwords, URLs with credentials) out of everything that is logged or
 * shown. Errors from ws, the network or ioredis may quote a URL: they are rebuilt from a scrubbed
 * message before anyone sees them.
 */

const MASK = '***';

/**
 * `text` with every secret (as given and URL-encoded) replaced by ***; belt and braces, any
 * `token=` query parameter and any credentials in a URL are masked too.
 */
export function scrubSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join(MASK);
  }
  return out
    .replace(/([?&]token=)[^&\s#"']*/gi, `$1${MASK}`)
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, `$1${MASK}@`);
}

/** The secrets a URL with credentials carries: the URL itself and its password (as written and decoded). */
export function urlSecrets(url: string | undefined): string[] {
  if (!url) return [];
  const secrets = [url];
  try {
    const parsed = new URL(url);
    if (parsed.password) secrets.push(parsed.password, decodeURIComponent(parsed.password));
  } catch {
    // Not a URL: the value itself is all there is to hide.
  }
  return secrets;
}

/**
 * A copy of `err` whose message (and nothing else that could hold it) names no secret. Only safe
 * fields (code, errno, syscall, address, port) are carried over, never `cause` or the original stack.
 */
export function sanitiseError(err: unknown, secrets: ReadonlyArray<string | undefined>): Error {
  const safe = new Error(scrubSecrets(err instanceof Error ? err.message : String(err), secrets));
  safe.name = err instanceof Error && typeof err.name === 'string' ? err.name : 'Error';
  const source = err as Record<string, unknown> | null;
  for (const key of ['code', 'errno', 'syscall', 'address', 'port'] as const) {
    const value = source && typeof source === 'object' ? source[key] : undefined;
    if (typeof value === 'string' || typeof value === 'number')
      (safe as unknown as Record<string, unknown>)[key] = value;
  }
  return safe;
}
