import { connect, type Socket } from 'node:net';
import { classifyStatus, type Outcome } from './outcome.js';

/**
 * A keep-alive HTTP/1.1 connection on a raw socket: a few hundred bytes of state per
 * connection, so ten thousand of them stay cheap. Requests may be pipelined; answers
 * come back in order and settle the oldest pending request.
 */

export interface RawAnswer {
  outcome: Outcome;
  status?: number;
}

interface Pending {
  resolve: (a: RawAnswer) => void;
  timer: NodeJS.Timeout;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CHUNKED_END = Buffer.from('0\r\n\r\n');

/** Parses one response at the head of buf; null when more bytes are needed. */
export function parseResponse(buf: Buffer): { status: number; retryAfter: boolean; consumed: number } | null {
  const headEnd = buf.indexOf(HEADER_END);
  if (headEnd < 0) return null;
  const head = buf.toString('latin1', 0, headEnd).toLowerCase();
  const status = Number(head.slice(9, 12));
  const bodyStart = headEnd + 4;
  const retryAfter = head.includes('\r\nretry-after:');
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (cl) {
    const end = bodyStart + Number(cl[1]);
    return buf.length >= end ? { status, retryAfter, consumed: end } : null;
  }
  if (head.includes('\r\ntransfer-encoding:') && head.includes('chunked')) {
    // Small bodies only: the last-chunk marker is searched, not each chunk framed.
    const last = buf.indexOf(CHUNKED_END, bodyStart);
    return last < 0 ? null : { status, retryAfter, consumed: last + CHUNKED_END.length };
  }
  return { status, retryAfter, consumed: bodyStart };
}

export class RawConnection {
  private socket: Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];
  /** Times the server closed this connection while it was idle. */
  closedByServer = 0;
  reconnects = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connectTimeoutMs: number,
  ) {}

  get open(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  /** Resolves true once connected; never rejects. */
  connect(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect({ host: this.host, port: this.port, noDelay: true });
      const timer = setTimeout(() => s.destroy(new Error('connect timeout')), this.connectTimeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        this.attach(s);
        resolve(true);
      });
      s.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  private attach(s: Socket): void {
    this.socket = s;
    this.buffered = Buffer.alloc(0);
    s.setKeepAlive(true, 30_000);
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('close', () => {
      // Only a close we did not initiate counts; ours detach the socket first.
      if (this.socket !== s) return;
      this.socket = undefined;
      if (this.pending.length === 0) this.closedByServer++;
      this.failAll('conn_error');
    });
    s.on('error', () => undefined);
  }

  private onData(d: Buffer): void {
    this.buffered = this.buffered.length === 0 ? d : Buffer.concat([this.buffered, d]);
    for (let r = parseResponse(this.buffered); r; r = parseResponse(this.buffered)) {
      this.buffered = this.buffered.subarray(r.consumed);
      const p = this.pending.shift();
      if (!p) continue;
      clearTimeout(p.timer);
      p.resolve({ outcome: classifyStatus(r.status, r.retryAfter), status: r.status });
    }
  }

  private failAll(outcome: Outcome): void {
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.resolve({ outcome });
    }
  }

  /**
   * Sends GET path; a connection closed by the server is reopened first, as a real
   * keep-alive client would. A timed-out request closes the connection because later
   * answers could no longer be matched to requests.
   */
  async get(path: string, deadline: number): Promise<RawAnswer> {
    if (!this.open) {
      this.reconnects++;
      if (!(await this.connect())) return { outcome: 'conn_error' };
    }
    const socket = this.socket;
    if (!socket) return { outcome: 'conn_error' };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.failAll('timeout');
        if (this.socket === socket) this.socket = undefined;
        socket.destroy();
      }, Math.max(1, deadline - performance.now()));
      this.pending.push({ resolve, timer });
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nConnection: keep-alive\r\n\r\n`);
    });
  }

  destroy(): void {
    const s = this.socket;
    this.socket = undefined;
    this.failAll('conn_error');
    s?.destroy();
  }
}
