// A fully received body: kept in memory up to a threshold, spilled to a temp file beyond
// it. Request bodies are buffered so a slow uploader never holds a backend slot; response
// bodies so a slow downloader never does.
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import type { BufferBudget } from './buffer-budget.js';

export class BufferedBody {
  private constructor(
    readonly size: number,
    private readonly memory: Buffer | undefined,
    private readonly filePath: string | undefined,
    private readonly dir: string | undefined,
    /** Gives back what this body took of a BufferBudget; once. */
    private release: (() => void) | undefined = undefined,
    /** Where this body starts in `filePath` (a slice of a spilled body). */
    private readonly offset = 0,
  ) {}

  static empty(): BufferedBody {
    return new BufferedBody(0, Buffer.alloc(0), undefined, undefined);
  }

  static fromBuffer(buffer: Buffer): BufferedBody {
    return new BufferedBody(buffer.length, buffer, undefined, undefined);
  }

  /** The bytes, when held in memory; spilled bodies must be streamed. */
  get buffer(): Buffer | undefined {
    return this.memory;
  }

  /** A fresh stream of the whole body; may be called more than once (coalesced followers). */
  stream(): Readable {
    if (this.memory) return Readable.from(this.memory.length > 0 ? [this.memory] : []);
    if (this.size === 0) return Readable.from([]);
    return createReadStream(this.filePath!, { start: this.offset, end: this.offset + this.size - 1 });
  }

  /**
   * Bytes `start`..`end` (inclusive) as a body of their own (a byte range). The slice
   * borrows this body's storage: it must be read before this body is disposed, and
   * disposing the slice deletes nothing.
   */
  slice(start: number, end: number): BufferedBody {
    const size = Math.max(0, end - start + 1);
    if (this.memory) return BufferedBody.fromBuffer(this.memory.subarray(start, end + 1));
    // A slice owns no budget share: the body it borrows from does.
    return new BufferedBody(size, undefined, this.filePath, undefined, undefined, this.offset + start);
  }

  /** Reads the whole body into memory (for stores that need bytes, such as the job result store). */
  async toBuffer(): Promise<Buffer> {
    if (this.memory) return this.memory;
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream()) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async dispose(): Promise<void> {
    this.release?.();
    this.release = undefined;
    if (this.dir) await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Collects a stream. `onLimit` builds the error raised when more than `maxBytes` arrive.
   * On overflow a request stream is only paused, so its connection can still carry the 413;
   * other sources (a backend response) are destroyed so nothing more is read.
   */
  static async collect(
    source: Readable,
    options: {
      memoryLimit: number; maxBytes: number; tempDir?: string | undefined; onLimit: () => Error; keepSourceOnLimit?: boolean;
      /** Aborting stops the collection with the signal's reason; the source is paused, not destroyed. */
      signal?: AbortSignal;
      /** Shared budgets: a body that does not fit in memory spills; one that does not fit on disk fails with `onFull()`. */
      budget?: { readonly shared: BufferBudget; readonly onFull: () => Error };
    },
  ): Promise<BufferedBody> {
    const chunks: Buffer[] = [];
    let size = 0;
    let file: WriteStream | undefined;
    let dir: string | undefined;
    let filePath: string | undefined;
    const budget = options.budget?.shared;
    let memoryTaken = 0;
    let diskTaken = 0;
    const giveBack = () => {
      budget?.releaseMemory(memoryTaken);
      budget?.releaseDisk(diskTaken);
      memoryTaken = 0;
      diskTaken = 0;
    };
    try {
      await new Promise<void>((resolve, reject) => {
        // Once spilling, each chunk is written before the next is read (pause/resume), so
        // a fast sender and a slow disk never pile chunks up in memory.
        let pending: Promise<void> = Promise.resolve();
        let spilling = false;
        const fail = (err: Error) => { cleanup(); reject(err); };
        const stop = (err: Error) => {
          if (options.keepSourceOnLimit) source.pause();
          else source.destroy(err);
          fail(err);
        };
        const onData = (raw: Buffer | Uint8Array) => {
          const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
          size += chunk.length;
          if (size > options.maxBytes) {
            stop(options.onLimit());
            return;
          }
          if (!spilling && size <= options.memoryLimit && (!budget || budget.takeMemory(chunk.length))) {
            memoryTaken += chunk.length;
            chunks.push(chunk);
            return;
          }
          if (budget && !budget.takeDisk(spilling ? chunk.length : size)) {
            stop(options.budget!.onFull());
            return;
          }
          diskTaken += spilling ? chunk.length : size;
          if (!spilling) {
            spilling = true;
            const held = chunks.splice(0);
            pending = pending.then(async () => {
              dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'sluice-body-'));
              filePath = join(dir, 'body');
              // Bodies carry credentials and user data: readable by Sluice's user only.
              file = createWriteStream(filePath, { mode: 0o600 });
              for (const c of held) await write(file, c);
              // The held chunks are on disk now: their memory budget is free again.
              budget?.releaseMemory(memoryTaken);
              memoryTaken = 0;
            });
          }
          source.pause();
          pending = pending.then(() => write(file!, chunk)).then(() => { source.resume(); });
          pending.catch(fail);
        };
        const onEnd = () => { cleanup(); pending.then(resolve, reject); };
        const onError = (err: Error) => fail(err);
        const onClose = () => { if (!source.readableEnded) fail(new Error('stream closed before its end')); };
        const onAbort = () => { source.pause(); fail(options.signal!.reason as Error); };
        const cleanup = () => {
          source.off('data', onData);
          source.off('end', onEnd);
          source.off('error', onError);
          // Errors after we stop listening (a destroyed undici body emits one even without a
          // reason) must not go unheard: an unheard 'error' ends the process.
          source.on('error', ignoreLateError);
          source.off('close', onClose);
          options.signal?.removeEventListener('abort', onAbort);
        };
        if (options.signal?.aborted) {
          onAbort();
          return;
        }
        options.signal?.addEventListener('abort', onAbort, { once: true });
        source.on('data', onData);
        source.on('end', onEnd);
        source.on('error', onError);
        source.on('close', onClose);
      });
      const taken = { memory: memoryTaken, disk: diskTaken };
      const release = budget ? () => { budget.releaseMemory(taken.memory); budget.releaseDisk(taken.disk); } : undefined;
      if (file) {
        const f = file as WriteStream;
        f.end();
        await once(f, 'finish');
        return new BufferedBody(size, undefined, filePath, dir, release);
      }
      return new BufferedBody(size, Buffer.concat(chunks, size), undefined, undefined, release);
    } catch (err) {
      giveBack();
      (file as WriteStream | undefined)?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
      throw err;
    }
  }
}

function ignoreLateError(): void {}

async function write(file: WriteStream, chunk: Buffer): Promise<void> {
  if (!file.write(chunk)) await once(file, 'drain');
}
