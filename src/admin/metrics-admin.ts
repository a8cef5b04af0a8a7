// GET /metrics on the admin server: Prometheus text exposition format.
import type { SluiceMetrics } from '../telemetry/metrics.js';
import type { AdminServer } from './admin-server.js';

export function registerMetricsAdmin(admin: AdminServer, metrics: SluiceMetrics): void {
  admin.route('GET', '/metrics', async (_req, res) => {
    const { contentType, body } = await metrics.render();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  });
}
