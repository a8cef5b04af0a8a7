// Hand-written HTTP/1.1 bytes over node:net, for hostile cases no well-behaved client sends.
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Opens a socket to an http:// URL's host and port. */
export async function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  return socket;
}

/**
 * Writes `bytes`, then collects what comes back until `expect` responses are complete (with
 * `untilClose`, until the server closes), the server closes, or `timeoutMs` passes. Returns the parsed responses and the raw text.
 */
export async function exchange(url: string, bytes: string | Buffer, opts: { expect?: number; timeoutMs?: number; untilClose?: boolean } = {}): Promise<{ responses: RawResponse[]; text: string; closed: boolean }> {
  const socket = await openSocket(url);
  return collect(socket, opts, () => socket.write(bytes));
}

export async function collect(socket: Socket, opts: { expect?: number; timeoutMs?: number; untilClose?: boolean }, start: () => void = () => {}): Promise<{ responses: RawResponse[]; text: string; closed: boolean }> {
  const expect = opts.expect ?? 1;
  let text = '';
  return new Promise((resolve) => {
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses: parseResponses(text), text, closed });
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 10_000);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (!opts.untilClose && parseResponses(text).length >= expect) finish();
    });
    socket.on('close', () => { closed = true; finish(); });
    socket.on('error', () => {});
    start();
  });
}

/** Complete responses in `text` (Content-Length framed; Sluice frames its answers that way). */
export function parseResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (rest.length < end + 4 + length) break;
    out.push({ status, headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

export function request(method: string, target: string, headers: Record<string, string> = {}, body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: sluice.test'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body || method === 'POST' || method === 'PUT') lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
