// The access log: one JSON line per request through pino, written asynchronously
// (sonic-boom buffers and writes off the request path). Lines are at level `info`, so
// `logging.level: warn` (or `silent`) turns them off along with other chatter.
import { pino, type DestinationStream, type Logger } from 'pino';
import type { SluiceConfig } from '../config/schema.js';
import type { RequestContext } from '../pipeline/context.js';
import { responseStatus } from './trace-observer.js';
import { routeLabel } from './attributes.js';

export type LoggingConfig = SluiceConfig['logging'];

export interface LogSink {
  readonly logger: Logger;
  /** Writes one finished line (JSON and its newline) to the same destination, past pino. */
  writeLine(line: string): void;
  /** Writes out what is buffered; called on shutdown so no line is lost at exit. */
  flush(): void;
  close(): void;
}

/** `stdout`, `stderr` or a file path (its directory is created). */
export function createLogSink(config: LoggingConfig): LogSink {
  const destination = pino.destination({ dest: fdOrPath(config.destination), sync: false, minLength: 0, mkdir: true });
  // A write error (disk full, closed pipe) must not take the gateway down with it.
  destination.on('error', () => {});
  const logger = pino({
    level: config.level,
    base: undefined,
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination as DestinationStream);
  let closed = false;
  return {
    logger,
    writeLine(line) {
      destination.write(line);
    },
    flush() {
      if (closed) return;
      try {
        destination.flushSync();
      } catch {
        // Nothing written yet (the file is still opening), or the destination is gone.
      }
    },
    close() {
      this.flush();
      if (closed) return;
      closed = true;
      destination.end();
    },
  };
}

function fdOrPath(destination: string): number | string {
  if (destination === 'stdout') return 1;
  if (destination === 'stderr') return 2;
  return destination;
}

/**
 * One line per request, in exactly the shape pino writes (`level`, `time`, the fields,
 * `msg`), serialized with one JSON.stringify instead of pino's per-field loop: on a cache
 * hit the line cost more than the rest of Sluice's telemetry together.
 */
export class AccessLog {
  constructor(private readonly logger: Logger, private readonly writeLine: (line: string) => void) {}

  /** `traceId`: ours, or the client's when tracing is off. */
  write(ctx: RequestContext, traceId: string | undefined): void {
    if (!this.logger.isLevelEnabled('info')) return;
    const line = { level: 'info', time: new Date().toISOString(), ...accessLine(ctx, traceId), msg: 'request' };
    this.writeLine(`${JSON.stringify(line)}\n`);
  }
}

/** The fields of one access line; names are stable (people build queries on them). */
export function accessLine(ctx: RequestContext, traceId: string | undefined): Record<string, unknown> {
  const respond = ctx.phases.find((p) => p.name === 'respond');
  const line: Record<string, unknown> = {
    request_id: ctx.id,
    trace_id: traceId,
    method: ctx.method,
    path: ctx.pathname,
    route: ctx.route || ctx.jobId ? routeLabel(ctx) : undefined,
    status: responseStatus(ctx) ?? ctx.error?.status,
    bytes: ctx.bytesSent,
    queue_ms: ms(ctx.timings.queueMs),
    upstream_ms: ms(ctx.timings.upstreamMs),
    total_ms: ms((respond?.endMs || performance.now()) - ctx.startedAt),
  };
  if (ctx.timings.readBodyMs > 0) line.read_body_ms = ms(ctx.timings.readBodyMs);
  if (ctx.timings.coalesceWaitMs > 0) line.coalesce_ms = ms(ctx.timings.coalesceWaitMs);
  if (ctx.cacheStatus) line.cache = ctx.cacheStatus;
  if (ctx.coalesceRole) line.coalesce = ctx.coalesceRole;
  if (ctx.backendServer) line.backend = ctx.backendServer;
  if (ctx.jobId) line.job_id = ctx.jobId;
  if (ctx.error) line.error = ctx.error.code;
  // What clients are not told (a backend's address, a store's file) is logged for the operator.
  if (ctx.error?.cause instanceof Error) line.error_detail = ctx.error.cause.message;
  return line;
}

function ms(value: number): number {
  return Math.round(value * 10) / 10;
}
