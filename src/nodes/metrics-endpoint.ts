/**
 * `GET <httpAdminRoot>websocket-plus/metrics`: the package's Prometheus metrics on Node-RED's admin
 * server. With `adminAuth` set it takes a token with the `websocket-plus.read` permission (any user
 * with `read` has it), as Node-RED's own admin routes are guarded.
 */
import { packageMetrics } from '../core/metrics/metrics';
import type { NodeAPI } from './red-types';

export const METRICS_ROUTE = '/websocket-plus/metrics';
export const METRICS_PERMISSION = 'websocket-plus.read';

interface Response {
  status(code: number): Response;
  set(name: string, value: string): Response;
  send(body: string): void;
  end(): void;
}
type Handler = (req: unknown, res: Response, next?: (err?: unknown) => void) => void;

/** The admin parts of the runtime API: present in a running Node-RED (httpAdmin absent when the editor is off). */
interface AdminAPI {
  httpAdmin?: { get(path: string, ...handlers: Handler[]): void };
  auth?: { needsPermission(permission: string): Handler };
}

export function registerMetricsEndpoint(RED: NodeAPI): void {
  const admin = RED as unknown as AdminAPI;
  if (!admin.httpAdmin || !admin.auth) return;
  admin.httpAdmin.get(METRICS_ROUTE, admin.auth.needsPermission(METRICS_PERMISSION), (_req, res) => {
    const metrics = packageMetrics();
    metrics.metrics().then(
      (body) => {
        res.set('Content-Type', metrics.contentType).set('Cache-Control', 'no-store');
        res.send(body);
      },
      () => {
        res.status(500).end();
      },
    );
  });
}
