// A real OTLP/HTTP trace receiver for tests: listens on port 0, accepts POST /v1/traces
// as application/x-protobuf or application/json, decodes every span it gets, and answers
// like a collector. The protobuf decoder below reads the wire format directly (field
// numbers from opentelemetry-proto trace/v1 and common/v1), so nothing of the SDK under
// test is reused to check the SDK's output.
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export type AttrValue = string | number | boolean | AttrValue[] | undefined;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttrValue>;
  links: Array<{ traceId: string; spanId: string }>;
  status: { code: number; message: string };
  resource: Record<string, AttrValue>;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly requests: Array<{ contentType: string; bytes: number }>;
  /** Waits until `predicate` holds over the spans received so far. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: Array<{ contentType: string; bytes: number }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers['content-type'] ?? '');
      requests.push({ contentType, bytes: body.length });
      try {
        if (req.url !== '/v1/traces' || req.method !== 'POST') throw new Error(`unexpected ${req.method} ${req.url}`);
        spans.push(...(contentType.includes('json') ? decodeJson(body) : decodeProtobuf(body)));
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
        return;
      }
      // An empty ExportTraceServiceResponse: 0 bytes in protobuf, {} in JSON.
      if (contentType.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    requests,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(spans)) {
        if (Date.now() > deadline) throw new Error(`OTLP receiver: condition not met; got ${spans.length} spans: ${spans.map((s) => s.name).join(', ')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return spans;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- protobuf wire format -------------------------------------------------------------

interface Field { no: number; wire: number; varint?: bigint; bytes?: Buffer; fixed64?: Buffer; fixed32?: Buffer }

function readVarint(buf: Buffer, pos: { at: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos.at >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos.at++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  const pos = { at: 0 };
  while (pos.at < buf.length) {
    const key = Number(readVarint(buf, pos));
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, varint: readVarint(buf, pos) });
    else if (wire === 1) { out.push({ no, wire, fixed64: buf.subarray(pos.at, pos.at + 8) }); pos.at += 8; }
    else if (wire === 2) {
      const len = Number(readVarint(buf, pos));
      out.push({ no, wire, bytes: buf.subarray(pos.at, pos.at + len) });
      pos.at += len;
    } else if (wire === 5) { out.push({ no, wire, fixed32: buf.subarray(pos.at, pos.at + 4) }); pos.at += 4; }
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const all = (fs: Field[], no: number) => fs.filter((f) => f.no === no);
const one = (fs: Field[], no: number) => fs.find((f) => f.no === no);
const str = (f: Field | undefined) => f?.bytes?.toString('utf8') ?? '';
const hex = (f: Field | undefined) => f?.bytes?.toString('hex') ?? '';

function anyValue(buf: Buffer): AttrValue {
  const f = fields(buf)[0];
  if (!f) return undefined;
  switch (f.no) {
    case 1: return str(f);
    case 2: return f.varint !== 0n;
    case 3: return Number(BigInt.asIntN(64, f.varint!));
    case 4: return f.fixed64!.readDoubleLE(0);
    case 5: return all(fields(f.bytes!), 1).map((v) => anyValue(v.bytes!));
    default: return undefined;
  }
}

function keyValues(fs: Field[]): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of fs) {
    const inner = fields(kv.bytes!);
    const value = one(inner, 2);
    out[str(one(inner, 1))] = value ? anyValue(value.bytes!) : undefined;
  }
  return out;
}

function decodeProtobuf(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of all(fields(body), 1)) {
    const rsFields = fields(rs.bytes!);
    const resourceField = one(rsFields, 1);
    const resource = resourceField ? keyValues(all(fields(resourceField.bytes!), 1)) : {};
    for (const ss of all(rsFields, 2)) {
      for (const sp of all(fields(ss.bytes!), 2)) {
        const s = fields(sp.bytes!);
        const statusField = one(s, 15);
        const status = statusField ? fields(statusField.bytes!) : [];
        out.push({
          traceId: hex(one(s, 1)),
          spanId: hex(one(s, 2)),
          traceState: str(one(s, 3)),
          parentSpanId: hex(one(s, 4)),
          name: str(one(s, 5)),
          kind: Number(one(s, 6)?.varint ?? 0n),
          startNs: one(s, 7)?.fixed64?.readBigUInt64LE(0) ?? 0n,
          endNs: one(s, 8)?.fixed64?.readBigUInt64LE(0) ?? 0n,
          attributes: keyValues(all(s, 9)),
          links: all(s, 13).map((l) => { const lf = fields(l.bytes!); return { traceId: hex(one(lf, 1)), spanId: hex(one(lf, 2)) }; }),
          status: { code: Number(one(status, 3)?.varint ?? 0n), message: str(one(status, 2)) },
          resource,
        });
      }
    }
  }
  return out;
}

// ---- OTLP/JSON ------------------------------------------------------------------------

interface JsonAnyValue { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number; arrayValue?: { values?: JsonAnyValue[] } }
interface JsonKeyValue { key: string; value?: JsonAnyValue }

function jsonValue(v: JsonAnyValue | undefined): AttrValue {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(jsonValue);
  return undefined;
}

const jsonAttrs = (kvs: JsonKeyValue[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, jsonValue(kv.value)]));

function decodeJson(body: Buffer): ReceivedSpan[] {
  const doc = JSON.parse(body.toString('utf8')) as { resourceSpans?: any[] };
  const out: ReceivedSpan[] = [];
  for (const rs of doc.resourceSpans ?? []) {
    const resource = jsonAttrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', traceState: s.traceState ?? '',
          name: s.name, kind: s.kind, startNs: BigInt(s.startTimeUnixNano), endNs: BigInt(s.endTimeUnixNano),
          attributes: jsonAttrs(s.attributes),
          links: (s.links ?? []).map((l: any) => ({ traceId: l.traceId, spanId: l.spanId })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
        });
      }
    }
  }
  return out;
}

/** Span duration in milliseconds. */
export function durationMs(span: ReceivedSpan): number {
  return Number(span.endNs - span.startNs) / 1e6;
}
