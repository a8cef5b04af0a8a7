// Everything that watches requests, built once from the config by the composition root:
// tracing (when an exporter is configured), Prometheus metrics, the access log, the live
// window behind the dashboard, and job tracing. Observers never change a request's outcome.
import { parseTraceParent } from '@opentelemetry/core';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../config/schema.js';
import { firstHeader } from '../http/headers.js';
import type { RequestContext } from '../pipeline/context.js';
import type { RequestObserver, UpstreamTraceContext } from '../pipeline/deps.js';
import type { SlotQueue } from '../slots/slot-queue.js';
import { AccessLog, createLogSink, type LogSink } from './access-log.js';
import { NO_JOB_TRACING, OtelJobTracer, type JobTracer } from './job-tracing.js';
import { LiveWindow } from './live-window.js';
import { SluiceMetrics } from './metrics.js';
import { TracingObserver } from './trace-observer.js';
import { createTracing, type Tracing } from './tracing.js';

export class Telemetry {
  readonly logger: Logger;
  readonly metrics: SluiceMetrics;
  readonly live: LiveWindow;
  /** For the jobs component: submission and attempt spans (no-ops when tracing is off). */
  readonly jobs: JobTracer;
  /** In the order they run; the last one ends the trace and then writes the access line. */
  readonly observers: readonly RequestObserver[];
  /** Starts each backend call's CLIENT span and supplies its traceparent; absent when tracing is off. */
  readonly traceContext: UpstreamTraceContext | undefined;
  private readonly tracing: Tracing | undefined;
  private readonly sink: LogSink;

  constructor(config: Readonly<SluiceConfig>, queue: SlotQueue) {
    this.sink = createLogSink(config.logging);
    this.logger = this.sink.logger;
    this.metrics = new SluiceMetrics(queue);
    this.live = new LiveWindow(queue, { windowS: 300, recentS: 60, slowKept: 12, now: Date.now });
    this.tracing = createTracing(config.tracing);
    const observer = this.tracing ? new TracingObserver(this.tracing.tracer) : undefined;
    this.traceContext = observer;
    this.jobs = this.tracing && observer ? new OtelJobTracer(this.tracing.tracer, (ctx) => observer.contextOf(ctx)) : NO_JOB_TRACING;
    const accessLog = config.logging.access_log && config.logging.level !== 'silent' ? new AccessLog(this.logger, (line) => this.sink.writeLine(line)) : undefined;
    const observers: RequestObserver[] = [this.metrics, this.live];
    if (observer) observers.push(observer);
    if (observer || accessLog) {
      observers.push({
        onDone: (ctx) => {
          const traceId = observer ? observer.finish(ctx).traceId : clientTraceId(ctx);
          accessLog?.write(ctx, traceId);
        },
      });
    }
    this.observers = observers;
  }

  start(): void {
    this.metrics.start();
    this.live.start();
  }

  /** After the gateway has drained: export the last spans and flush the log. */
  async shutdown(): Promise<void> {
    this.live.stop();
    this.metrics.stop();
    await this.tracing?.shutdown();
    this.sink.close();
  }
}

/** Without tracing, log lines still join the client's trace when it sent one. */
function clientTraceId(ctx: RequestContext): string | undefined {
  const offered = firstHeader(ctx.req.headers['traceparent']);
  return offered ? parseTraceParent(offered)?.traceId : undefined;
}
