// The live dashboard on the admin server: `/` serves the page, `/dashboard.json` one
// snapshot, `/dashboard/events` a snapshot per second as server-sent events.
import type { ServerResponse } from 'node:http';
import type { LiveWindow } from '../telemetry/live-window.js';
import { sendJson, type AdminServer } from './admin-server.js';
import { DASHBOARD_HTML } from './dashboard-page.js';

const PUSH_INTERVAL_MS = 1000;

/** `extra` adds top-level keys to each snapshot (the cluster view in scale-out mode). */
export function registerDashboard(admin: AdminServer, live: LiveWindow, extra: () => Record<string, unknown> = () => ({})): void {
  const snapshot = () => ({ ...live.snapshot(), ...extra() });
  const page = Buffer.from(DASHBOARD_HTML);
  admin.route('GET', '/', (_req, res) => {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': page.length,
      'cache-control': 'no-store',
      // Everything the page needs is inline; nothing may be fetched from elsewhere.
      'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
    });
    res.end(page);
  });
  admin.route('GET', '/dashboard.json', (_req, res) => sendJson(res, 200, snapshot()));
  admin.route('GET', '/dashboard/events', (req, res) => streamSnapshots(res, snapshot, () => req.socket.destroyed));
}

function streamSnapshots(res: ServerResponse, snapshot: () => unknown, gone: () => boolean): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  const push = () => {
    if (gone()) return;
    res.write(`data: ${JSON.stringify(snapshot())}\n\n`);
  };
  res.write('retry: 2000\n\n');
  push();
  const timer = setInterval(push, PUSH_INTERVAL_MS);
  timer.unref();
  res.once('close', () => clearInterval(timer));
}
