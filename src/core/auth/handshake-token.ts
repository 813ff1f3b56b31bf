/**
 * Reads the token from the `token` query parameter, the only place it is accepted. A repeated
 * parameter is ambiguous and refused; an oversized query is refused before any decoding.
 */
import { HandshakeError } from '../errors';
import { DEFAULT_MAX_TOKEN_LENGTH } from './token-verifier';

export function readToken(url: string | undefined, limits?: { maxTokenLength?: number }): string | undefined {
  if (!url) return undefined;
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  const query = url.slice(q + 1);
  const maxLength = limits?.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
  // Percent-encoding at most triples a token; anything longer cannot hold an acceptable token.
  if (query.length > maxLength * 3 + 1024) throw new HandshakeError('TOKEN_TOO_LARGE');
  const values = new URLSearchParams(query).getAll('token');
  if (values.length > 1) throw new HandshakeError('TOKEN_AMBIGUOUS');
  if (values.length === 0) return undefined;
  if (values[0].length > maxLength) throw new HandshakeError('TOKEN_TOO_LARGE');
  return values[0];
}
