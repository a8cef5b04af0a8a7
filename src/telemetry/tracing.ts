// Builds the tracer from the `tracing` config. Nothing is registered globally: the
// provider belongs to one app (tests run several in one process) and spans get their
// parent passed explicitly, so no context manager is needed. `exporter: none` builds no
// provider at all; callers then install no tracing observer, which is what makes it free.
import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, SimpleSpanProcessor,
  TraceIdRatioBasedSampler, ConsoleSpanExporter, type Sampler, type SpanExporter, type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import type { SluiceConfig } from '../config/schema.js';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION, SLUICE_VERSION, TRACER_NAME } from './attributes.js';

export type TracingConfig = SluiceConfig['tracing'];

/** Upper bound on how long shutdown waits for the last spans to be exported. */
const FLUSH_TIMEOUT_MS = 5000;

export interface Tracing {
  readonly tracer: Tracer;
  /** Exports what is buffered and stops; bounded so an unreachable collector cannot hold shutdown. */
  shutdown(): Promise<void>;
}

export function createTracing(config: TracingConfig): Tracing | undefined {
  if (config.exporter === 'none') return undefined;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.service_name, [ATTR_SERVICE_VERSION]: SLUICE_VERSION }),
    // A client's sampling decision is honoured; new traces are sampled at the configured ratio.
    sampler: new ParentBasedSampler({ root: rootSampler(config.sample_ratio) }),
    spanLimits: { attributeCountLimit: 64, eventCountLimit: 16, linkCountLimit: 8, attributeValueLengthLimit: 1024 },
    spanProcessors: [spanProcessor(config)],
  });
  return {
    tracer: provider.getTracer(TRACER_NAME, SLUICE_VERSION),
    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, FLUSH_TIMEOUT_MS); });
      try {
        await Promise.race([provider.shutdown().catch(() => undefined), bound]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** 0 and 1 skip the per-trace ratio arithmetic. */
function rootSampler(ratio: number): Sampler {
  if (ratio >= 1) return new AlwaysOnSampler();
  if (ratio <= 0) return new AlwaysOffSampler();
  return new TraceIdRatioBasedSampler(ratio);
}

function spanProcessor(config: TracingConfig): SpanProcessor {
  if (config.exporter === 'console') return new SimpleSpanProcessor(new ConsoleSpanExporter());
  // Every option is explicit so OTEL_BSP_* variables cannot change behaviour behind the config.
  return new BatchSpanProcessor(otlpExporter(config), {
    maxQueueSize: 8192,
    maxExportBatchSize: 512,
    scheduledDelayMillis: 1000,
    exportTimeoutMillis: 10_000,
  });
}

function otlpExporter(config: TracingConfig): SpanExporter {
  const options = { url: config.endpoint, timeoutMillis: 10_000 };
  return config.protocol === 'http/json' ? new OtlpJsonExporter(options) : new OtlpProtoExporter(options);
}
