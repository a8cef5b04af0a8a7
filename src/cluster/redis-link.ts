// The connection to Redis: one client for commands, one for pub/sub (a subscribed
// connection can run nothing else). Both reconnect forever with a capped backoff; while
// Redis is unreachable commands fail at once (no offline queue), so callers fall back to
// their local behaviour instead of piling up requests behind a dead socket.
//
// Health is reported as a closed set of words, reused in /readyz, /status and logs:
// `connecting` before the first connection, `up`, `down` after it was lost.
import { Redis, type RedisOptions } from 'ioredis';

export type RedisHealth = 'connecting' | 'up' | 'down';

export interface RedisLinkOptions {
  readonly url: string;
  /** A command that takes longer than this fails (a hung Redis counts as unreachable). */
  readonly commandTimeoutMs: number;
  readonly log: (level: 'info' | 'warn', message: string) => void;
}

type MessageHandler = (message: string) => void;

export class RedisLink {
  readonly client: Redis;
  readonly subscriber: Redis;
  private state: RedisHealth = 'connecting';
  private lastError: string | undefined;
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly upListeners: Array<() => void> = [];
  private readonly downListeners: Array<() => void> = [];
  private closed = false;

  constructor(private readonly options: RedisLinkOptions) {
    const common: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2_000,
      // Reconnect forever: 100 ms, 200 ms, ... capped at 2 s, so Redis coming back is noticed quickly.
      retryStrategy: (times) => Math.min(times * 100, 2_000),
    };
    this.client = new Redis(options.url, { ...common, commandTimeout: options.commandTimeoutMs, connectionName: 'sluice' });
    this.subscriber = new Redis(options.url, { ...common, connectionName: 'sluice-sub' });
    this.client.on('ready', () => this.setHealth('up'));
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
      // Before the first connection there is no transition to report; say once why we wait.
      if (this.state === 'connecting' && !this.warnedAtStart) {
        this.warnedAtStart = true;
        this.warnUnreachable();
      }
    });
    this.client.on('close', () => this.setHealth(this.state === 'connecting' ? 'connecting' : 'down'));
    this.client.on('end', () => this.setHealth('down'));
    this.subscriber.on('error', () => {});
    this.subscriber.on('message', (channel: string, message: string) => this.handlers.get(channel)?.(message));
    // ioredis re-subscribes on reconnect; the first subscription is made once connected.
    this.subscriber.once('ready', () => {
      if (this.handlers.size > 0) this.subscriber.subscribe(...this.handlers.keys()).catch(() => {});
    });
  }

  get health(): RedisHealth {
    return this.state;
  }

  get error(): string | undefined {
    return this.state === 'up' ? undefined : this.lastError;
  }

  /** Where Redis is, without any password in the URL: safe for logs and /status. */
  get where(): string {
    try {
      const url = new URL(this.options.url);
      url.password = '';
      url.username = '';
      return url.toString();
    } catch {
      return 'redis';
    }
  }

  /** Registers a channel handler; call before connect(). */
  onMessage(channel: string, handler: MessageHandler): void {
    this.handlers.set(channel, handler);
  }

  onUp(listener: () => void): void {
    this.upListeners.push(listener);
  }

  onDown(listener: () => void): void {
    this.downListeners.push(listener);
  }

  /** Starts connecting in the background; never rejects (failures are retried and logged). */
  connect(): void {
    this.client.connect().catch(() => {});
    this.subscriber.connect().catch(() => {});
  }

  /** A failed or timed-out command: Redis counts as down until the client is ready again. */
  reportDown(err?: unknown): void {
    if (err instanceof Error) this.lastError = err.message;
    if (this.state === 'up') this.setHealth('down');
  }

  /** A command succeeded after reportDown (e.g. a timeout on a live connection). */
  reportUp(): void {
    if (this.state === 'down' && this.client.status === 'ready') this.setHealth('up');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  private setHealth(next: RedisHealth): void {
    if (this.closed || next === this.state) return;
    const previous = this.state;
    this.state = next;
    if (next === 'up') {
      this.options.log('info', `cluster: connected to Redis at ${this.where}${previous === 'down' ? ' again; shared slots resume' : ''}`);
      for (const listener of this.upListeners) listener();
    } else if (next === 'down') {
      this.warnUnreachable();
      for (const listener of this.downListeners) listener();
    }
  }

  private warnedAtStart = false;

  private warnUnreachable(): void {
    this.options.log('warn', `cluster: Redis at ${this.where} is unreachable (${this.lastError ?? 'connection closed'}); using fallback_slots until it is back, retrying every 2s at most`);
  }
}
