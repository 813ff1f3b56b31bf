/**
 * Turns a client's flow properties (as the editor, or core's websocket-client, stores them) into
 * OutboundConnection options. Only what needs the runtime (the TLS config node, the proxy settings)
 * is added by the node.
 */
import type { OutboundAuthMode, OutboundConnectionOptions } from '../client/outbound-connection';
import { CLIENT_DEFAULTS, CLIENT_RUNTIME_DEFAULTS } from './defaults';
import { parseMaxPayload } from './listener-config';
import { parsePeerProps, PeerProps } from './peer-props';

export interface ClientProperties {
  path?: unknown;
  subprotocol?: unknown;
  wholemsg?: unknown;
  peerProps?: unknown;
  authMode?: unknown;
  hb?: unknown;
  maxPayload?: unknown;
  headers?: unknown;
}

/** One upgrade header as core's websocket-client stores it in the flow. */
export interface HeaderEntry {
  keyType?: string;
  keyValue?: string;
  valueType?: string;
  valueValue?: string;
}

export interface ClientConfig extends Required<
  Pick<OutboundConnectionOptions, 'url' | 'authMode' | 'subprotocol' | 'headers' | 'heartbeatMs' | 'maxPayload'>
> {
  /** Node-RED has already replaced a `${ENV_VAR}` credential with the variable's value. */
  token: string | undefined;
  /** The whole message travels as JSON. Default is false (msg.payload only). */
  wholeMessage: boolean;
  /** Properties a peer's entire-message frame may set; null = every one ("*", and always in payload mode). */
  peerProps: PeerProps;
}

/**
 * Turns the flow's header list into a function called at each connect, so a header taken from an
 * environment variable follows the variable. Same reading as core: keyType "other" means the name
 * is keyValue, otherwise keyType is the name; valueType "other" is a static string, "env" names an
 * environment variable, any other valueType is itself the value (a preset). Empty names or values
 * are left out.
 */
export function headerResolver(entries: unknown, readEnv: (name: string) => unknown): () => Record<string, string> {
  const list: HeaderEntry[] = Array.isArray(entries) ? entries.filter((e) => e && typeof e === 'object') : [];
  return () => {
    const headers: Record<string, string> = {};
    for (const entry of list) {
      const name = entry.keyType === 'other' ? entry.keyValue : entry.keyType;
      let value: unknown;
      if (entry.valueType === 'other') value = entry.valueValue;
      else if (entry.valueType === 'env') value = entry.valueValue ? readEnv(entry.valueValue) : undefined;
      else value = entry.valueType;
      if (name && value !== undefined && value !== null && value !== '') headers[String(name).trim()] = String(value);
    }
    return headers;
  };
}

/** Heartbeat seconds from the flow ("" or "0" = off, as core's client reads it) to ms. */
export function heartbeatMs(value: unknown): number {
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : CLIENT_RUNTIME_DEFAULTS.heartbeatMs;
}

/**
 * Parses a client's flow properties; `readEnv` reads an environment variable named by a header
 * (at each connect). A bad value is a ConfigError; the URL, token and subprotocols are checked by
 * OutboundConnection itself.
 */
export function parseClientConfig(
  props: ClientProperties,
  token: string | undefined,
  readEnv: (name: string) => unknown,
): ClientConfig {
  const wholeMessage = props.wholemsg === true || props.wholemsg === 'true';
  const authMode: OutboundAuthMode = (props.authMode ?? CLIENT_DEFAULTS.authMode) === 'none' ? 'none' : 'jwt';
  return {
    url: String(props.path ?? CLIENT_DEFAULTS.path),
    authMode,
    token,
    subprotocol: typeof props.subprotocol === 'string' ? props.subprotocol : CLIENT_DEFAULTS.subprotocol,
    headers: headerResolver(props.headers, readEnv),
    heartbeatMs: heartbeatMs(props.hb),
    maxPayload: parseMaxPayload(props.maxPayload, CLIENT_RUNTIME_DEFAULTS.maxPayload),
    wholeMessage,
    // Payload mode puts the frame in msg.payload only: the list is not used there, so not checked either.
    peerProps: wholeMessage ? parsePeerProps(props.peerProps) : null,
  };
}

export interface ClientSession {
  type: 'websocket';
  id: string | undefined;
  authStatus: 'none';
  routingScope: 'session';
}

/** `msg._session` of a client's messages: its one socket, no verified identity. */
export function clientSession(id: string | undefined): ClientSession {
  return { type: 'websocket', id, authStatus: 'none', routingScope: 'session' };
}
