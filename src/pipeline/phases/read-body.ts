// The one phase that reads request bodies. The whole body is read before a job is stored,
// before coalescing (a leader must not need its client's socket once followers depend on
// it) and before a slot is taken, so a slow uploader costs a socket and some memory (or a
// temp file), never a backend thread.
import type { IncomingMessage } from 'node:http';
import { SluiceError } from '../../errors.js';
import { BufferedBody } from '../../http/body-buffer.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export async function readBody(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  if (!hasBody(ctx.req)) {
    ctx.body = BufferedBody.empty();
    return 'continue';
  }
  const started = performance.now();
  const body = await readRequestBody(ctx, deps);
  ctx.body = body;
  ctx.finalizers.push(() => body.dispose());
  ctx.timings.readBodyMs += performance.now() - started;
  return 'continue';
}

/** A body announced by Content-Length (other than 0) or Transfer-Encoding. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

async function readRequestBody(ctx: RequestContext, deps: PipelineDeps): Promise<BufferedBody> {
  const limits = deps.config.raw.limits;
  const route = ctx.route!;
  if (ctx.expectsContinue) ctx.res.writeContinue();
  if (ctx.req.readableEnded) return BufferedBody.empty();
  // Late: answered 408 (and the connection closed, its framing is lost), not a silent reset.
  const late = new AbortController();
  const timer = setTimeout(() => {
    late.abort(new SluiceError('client_body_timeout', `no complete body within ${limits.client_body_timeout}ms`));
  }, Math.min(limits.client_body_timeout, Math.max(0, ctx.deadlineAt - performance.now())));
  try {
    return await BufferedBody.collect(ctx.req, {
      memoryLimit: limits.memory_buffer,
      maxBytes: route.maxBodyBytes,
      tempDir: limits.temp_dir,
      keepSourceOnLimit: true,
      onLimit: () => new SluiceError('body_too_large', `route ${route.name} allows ${route.maxBodyBytes} bytes`),
      signal: late.signal,
      budget: deps.buffers && {
        shared: deps.buffers,
        onFull: () => new SluiceError('buffer_full', `limits.buffer_disk (${deps.buffers!.diskMax} bytes) is in use`, { retryAfterSeconds: 5 }),
      },
    });
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new SluiceError('client_closed', 'while sending the request body', { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
