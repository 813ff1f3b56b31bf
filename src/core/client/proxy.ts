/**
 * Decides which HTTP proxy (if any) carries a connection, and builds the agent or fetch that goes
 * through it. Two sources, never mixed: the site's settings (`RED.settings.proxyOptions`, passed in
 * as a plain object) when they name any proxy key, otherwise the environment. Mixing them would make
 * it impossible to tell which NO_PROXY list applies to which proxy.
 *
 * - wss:// and https:// use the https proxy; ws:// and http:// use the http proxy.
 * - WebSockets always go through a CONNECT tunnel (https-proxy-agent), for ws:// as well: an
 *   upgrade cannot be forwarded as an absolute-URI request by most proxies.
 * - The proxied fetch sends https:// through a CONNECT tunnel and http:// as an absolute-URI
 *   request, which is what proxies expect (many only allow CONNECT to port 443).
 * - Credentials in the proxy URL become `Proxy-Authorization: Basic`. They are never part of an
 *   error message: use `redactUrl` to show a proxy.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { ConfigError } from '../errors';

/** The proxy keys of `RED.settings.proxyOptions` this package reads. */
export interface ProxySettings {
  https_proxy?: string;
  http_proxy?: string;
  /** Comma- or space-separated list, or an array: `host`, `.domain`, `*.domain`, `host:port`, `*`. */
  no_proxy?: string | string[];
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'ws:': 80, 'https:': 443, 'wss:': 443 };

function isSecureScheme(protocol: string): boolean {
  return protocol === 'wss:' || protocol === 'https:';
}

function toUrl(target: string | URL): URL {
  const url = typeof target === 'string' ? new URL(target) : target;
  if (!(url.protocol in DEFAULT_PORTS)) throw new ConfigError('URL_INVALID', url.protocol);
  return url;
}

function nonEmpty(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** Settings count as the proxy configuration only when they name at least one proxy key. */
export function settingsConfigureProxy(settings: ProxySettings | undefined | null): settings is ProxySettings {
  if (!settings || typeof settings !== 'object') return false;
  const noProxy = Array.isArray(settings.no_proxy) ? settings.no_proxy.join(',') : settings.no_proxy;
  return nonEmpty(settings.https_proxy) || nonEmpty(settings.http_proxy) || nonEmpty(noProxy);
}

/**
 * True when `noProxy` says `url` must be reached directly. Same reading as proxy-from-env (which
 * decides for the environment), so one NO_PROXY value means the same from either source:
 * `*` bypasses everything, `name` matches that host exactly, `.name` or `*.name` matches hosts
 * ending in `.name`, and a `:port` suffix restricts an entry to that port.
 */
export function bypassesProxy(url: URL, noProxy: string | string[] | undefined): boolean {
  const list = (Array.isArray(noProxy) ? noProxy.join(',') : (noProxy ?? '')).toLowerCase().trim();
  if (!list) return false;
  if (list === '*') return true;
  const hostname = url.hostname.toLowerCase();
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol];
  return list.split(/[,\s]+/).some((entry) => {
    if (!entry) return false;
    const withPort = /^(.+):(\d+)$/.exec(entry);
    let host = withPort ? withPort[1] : entry;
    if (withPort && Number(withPort[2]) !== port) return false;
    if (host.startsWith('*')) host = host.slice(1);
    else if (!host.startsWith('.')) return hostname === host;
    return hostname.endsWith(host);
  });
}

/** A proxy written without a scheme (`proxy.corp:3128`) is spoken to in plain HTTP, as curl does. */
function withScheme(proxy: string): string {
  return proxy.includes('://') ? proxy : `http://${proxy}`;
}

/** Variables proxy-from-env may have taken an https proxy value from (npm's `npm_config_*` are not read). */
const HTTPS_PROXY_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'];

function fromEnvironment(url: URL): string | undefined {
  // proxy-from-env picks the variable by the URL's scheme, and there is no `wss_proxy`: ask with
  // the http(s) scheme that names the variable we mean. Host and port are what NO_PROXY needs.
  const secure = isSecureScheme(url.protocol);
  const asked = `${secure ? 'https' : 'http'}://${url.host}/`;
  const proxy = getProxyForUrl(asked);
  if (!proxy) return undefined;
  // proxy-from-env gives a scheme-less value the target's scheme (`https://proxy:3128` for an
  // https target), which would mean TLS to the proxy. Undo that when the variable had no scheme.
  if (secure && proxy.startsWith('https://')) {
    const raw = proxy.slice('https://'.length);
    if (HTTPS_PROXY_VARIABLES.some((name) => process.env[name] === raw)) return `http://${raw}`;
  }
  return proxy;
}

/**
 * The proxy URL (credentials included) that must carry a connection to `target`, or undefined for
 * a direct connection. Settings that name any proxy key are used alone; otherwise the environment
 * (`https_proxy`/`HTTPS_PROXY` for wss/https, `http_proxy`/`HTTP_PROXY` for ws/http,
 * `no_proxy`/`NO_PROXY`) is read at each call, so a changed environment applies at the next connect.
 */
export function proxyUrlFor(target: string | URL, settings?: ProxySettings | null): string | undefined {
  const url = toUrl(target);
  let proxy: string | undefined;
  if (settingsConfigureProxy(settings)) {
    if (bypassesProxy(url, settings.no_proxy)) return undefined;
    const chosen = isSecureScheme(url.protocol) ? settings.https_proxy : settings.http_proxy;
    proxy = nonEmpty(chosen) ? withScheme(chosen.trim()) : undefined;
  } else {
    proxy = fromEnvironment(url);
  }
  if (!proxy) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(proxy);
  } catch {
    // The value may hold a password: say what is wrong, not what it is.
    throw new ConfigError('OPTION_INVALID', 'proxy URL cannot be parsed');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError('OPTION_INVALID', `proxy URL must be http:// or https://, not ${parsed.protocol}//`);
  }
  return parsed.href;
}

/** A URL fit for logs and status: no user name, no password, no query (it may hold a token). */
export function redactUrl(value: string | URL): string {
  try {
    const url = new URL(String(value));
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    return url.href;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * The agent that tunnels a connection to `target` through its proxy (CONNECT), or undefined for a
 * direct connection. TLS options for the target itself (ca, servername, ...) are given to the
 * request, not here: https-proxy-agent passes the request's options to the TLS handshake it runs
 * inside the tunnel.
 */
export function proxyAgentFor(
  target: string | URL,
  settings?: ProxySettings | null,
  signal?: AbortSignal,
): http.Agent | undefined {
  const proxy = proxyUrlFor(target, settings);
  return proxy ? tunnelAgent(proxy, signal) : undefined;
}

/**
 * An https-proxy-agent whose sockets to the proxy end when `signal` aborts. https-proxy-agent waits
 * for the CONNECT reply with no timeout, and a request destroyed before it has a socket never hears
 * of the socket opened for it: a proxy that accepts TCP and never answers would keep that socket (and
 * whoever awaits the request) forever. The signal goes to net.connect (or tls.connect for an https://
 * proxy), which destroys the socket on abort at any stage: before the reply, inside the tunnel, or
 * after it was handed to the request.
 */
function tunnelAgent(proxy: string | URL, signal: AbortSignal | undefined): HttpsProxyAgent<string> {
  return new HttpsProxyAgent(typeof proxy === 'string' ? proxy : proxy.href, signal ? { signal } : undefined);
}

// ---------------------------------------------------------------------------------------------
// fetch through the proxy

type FetchInput = Parameters<typeof fetch>[0];
type FetchInit = NonNullable<Parameters<typeof fetch>[1]>;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const MAX_REDIRECTS = 20;

interface PlainRequest {
  url: URL;
  method: string;
  headers: Headers;
  body: Buffer | undefined;
  signal: AbortSignal | undefined;
  redirect: NonNullable<FetchInit['redirect']>;
}

function bodyToBuffer(body: unknown): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('proxied fetch supports string, URLSearchParams and byte bodies only');
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  const pair = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return `Basic ${Buffer.from(pair).toString('base64')}`;
}

/** TLS options for wss:// and https:// targets (a Node-RED tls-config node's addTLSOptions output fits). */
export interface TlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer | Array<string | Buffer>;
  key?: string | Buffer | Array<string | Buffer>;
  passphrase?: string;
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface ProxyFetchOptions {
  /**
   * When given, used unchanged for URLs that need no proxy (when no `tls` is given). By default every
   * request is made with node:http(s), which ends its socket as soon as the request is aborted (the
   * global fetch keeps an aborted request's socket open for seconds).
   */
  baseFetch?: typeof fetch;
  /** When set, every https:// request (proxied or not) is made by node:https with these options. */
  tls?: TlsOptions;
}

/** One request/response, through `proxy` when given, without following redirects. */
function requestOnce(req: PlainRequest, proxy: URL | undefined, tls: TlsOptions | undefined): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const { signal } = req;
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const headers: Record<string, string> = {};
    req.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (req.body) headers['content-length'] = String(req.body.length);
    // Ends the socket to the proxy (see tunnelAgent) when the request ends in any way but a read body.
    const tunnel = new AbortController();
    let outgoing: http.ClientRequest;
    if (req.url.protocol === 'https:') {
      // Through the proxy: a CONNECT tunnel, and TLS to the target inside it with these options.
      outgoing = https.request(req.url, {
        ...tls,
        method: req.method,
        headers,
        agent: proxy ? tunnelAgent(proxy, tunnel.signal) : false,
      });
    } else if (!proxy) {
      outgoing = http.request(req.url, { method: req.method, headers, agent: false });
    } else {
      // Plain HTTP through a proxy: the absolute URI goes to the proxy, which forwards it.
      const auth = proxyAuthorization(proxy);
      if (auth) headers['proxy-authorization'] = auth;
      headers.host = req.url.host;
      const send = proxy.protocol === 'https:' ? https.request : http.request;
      outgoing = send({
        protocol: proxy.protocol,
        hostname: proxy.hostname.replace(/^\[|\]$/g, ''),
        port: proxy.port || DEFAULT_PORTS[proxy.protocol],
        method: req.method,
        path: req.url.href,
        headers,
        // No pooled keep-alive socket is left behind after the request.
        agent: false,
      });
    }
    const onAbort = (): void => {
      // Settles now: a request still waiting for its socket (a CONNECT the proxy never answers) emits
      // nothing when destroyed, so waiting for its 'error' could mean waiting forever.
      reject(abortReason(signal!));
      tunnel.abort();
      outgoing.destroy(abortReason(signal!) as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    outgoing.on('error', (err) => {
      done();
      tunnel.abort();
      reject(signal?.aborted ? abortReason(signal) : new TypeError('fetch failed', { cause: err }));
    });
    outgoing.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const responseHeaders = new Headers();
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
        responseHeaders.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
      let body: ReadableStream | null = null;
      if (NULL_BODY_STATUSES.has(status) || req.method === 'HEAD') {
        res.resume();
      } else {
        body = Readable.toWeb(res) as unknown as ReadableStream;
      }
      // The abort listener stays until the body has been read, so an abort also ends the body.
      res.on('close', () => {
        done();
        tunnel.abort();
      });
      let response: Response;
      try {
        response = new Response(body, { status, statusText: res.statusMessage, headers: responseHeaders });
      } catch (err) {
        res.destroy();
        tunnel.abort();
        reject(new TypeError('fetch failed', { cause: err }));
        return;
      }
      Object.defineProperty(response, 'url', { value: req.url.href });
      resolve(response);
    });
    outgoing.end(req.body);
  });
}

/** Follows redirects the way fetch does, each hop through the proxy rules again. */
async function proxiedRequest(
  req: PlainRequest,
  settings: ProxySettings | null | undefined,
  options: ProxyFetchOptions,
): Promise<Response> {
  const { baseFetch } = options;
  for (let hops = 0; ; hops++) {
    const proxy = proxyUrlFor(req.url, settings);
    const response =
      proxy || options.tls || !baseFetch
        ? await requestOnce(req, proxy ? new URL(proxy) : undefined, options.tls)
        : await baseFetch(req.url.href, {
            method: req.method,
            headers: req.headers,
            body: req.body,
            signal: req.signal,
            redirect: 'manual',
          });
    const location = response.headers.get('location');
    if (!REDIRECT_STATUSES.has(response.status) || req.redirect === 'manual') return response;
    if (req.redirect === 'error') {
      await response.body?.cancel();
      throw new TypeError(`fetch failed: redirect (${response.status}) refused`);
    }
    if (location === null) return response;
    await response.body?.cancel();
    if (hops >= MAX_REDIRECTS) throw new TypeError('fetch failed: too many redirects');
    const next = new URL(location, req.url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new TypeError('fetch failed: redirect to a non-HTTP URL');
    const keepMethod =
      response.status === 307 || response.status === 308 || req.method === 'GET' || req.method === 'HEAD';
    if (!keepMethod) {
      req = { ...req, method: 'GET', body: undefined };
      req.headers = new Headers(req.headers);
      req.headers.delete('content-type');
      req.headers.delete('content-length');
    }
    if (next.origin !== req.url.origin) {
      req.headers = new Headers(req.headers);
      req.headers.delete('authorization');
      req.headers.delete('cookie');
    }
    req = { ...req, url: next };
  }
}

/**
 * A `fetch` for http(s) URLs that follows the same proxy rules as WebSocket connections (Node's
 * global fetch is undici and ignores agents). Without a proxy for the URL (and without `tls`), a
 * given `baseFetch` is used unchanged. Supports method, headers, a
 * string/byte body, `signal` and `redirect` ('follow' | 'error' | 'manual'; 'error' refuses any 3xx).
 */
export function createProxyFetch(settings?: ProxySettings | null, options: ProxyFetchOptions = {}): typeof fetch {
  const { baseFetch } = options;
  const proxiedFetch = async (input: FetchInput, init?: FetchInit): Promise<Response> => {
    const request = input instanceof Request ? input : undefined;
    const url = new URL(request ? request.url : String(input instanceof URL ? input.href : input));
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`fetch failed: unsupported scheme ${url.protocol}`);
    if (baseFetch && !options.tls && !proxyUrlFor(url, settings)) return baseFetch(input, init);
    if (request?.body && init?.body === undefined)
      throw new TypeError('proxied fetch does not read Request bodies; pass init.body');
    const headers = new Headers(request?.headers);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    return proxiedRequest(
      {
        url,
        method: (init?.method ?? request?.method ?? 'GET').toUpperCase(),
        headers,
        body: bodyToBuffer(init?.body),
        signal: init?.signal ?? request?.signal ?? undefined,
        redirect: init?.redirect ?? request?.redirect ?? 'follow',
      },
      settings,
      options,
    );
  };
  return proxiedFetch as typeof fetch;
}
