// Spilled bodies on disk: request and response bodies carry credentials and user data, so
// the temp files that hold them are readable by Sluice's user only.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferedBody } from '../../src/http/body-buffer.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

describe('BufferedBody spill files', () => {
  it('spills past the memory limit into a 0700 directory holding a 0600 file, and removes both on dispose', async () => {
    const previous = process.umask(0o022);
    const tempDir = mkdtempSync(join(tmpdir(), 'sluice-spill-'));
    dirs.push(tempDir);
    try {
      const chunks = [Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b')];
      const body = await BufferedBody.collect(Readable.from(chunks), { memoryLimit: 1000, maxBytes: 10_000, tempDir, onLimit: () => new Error('too big') });
      expect(body.buffer).toBeUndefined();
      const [spillDir] = readdirSync(tempDir);
      expect(spillDir).toMatch(/^sluice-body-/);
      expect(statSync(join(tempDir, spillDir!)).mode & 0o777).toBe(0o700);
      expect(statSync(join(tempDir, spillDir!, 'body')).mode & 0o777).toBe(0o600);
      expect((await body.toBuffer()).equals(Buffer.concat(chunks))).toBe(true);
      await body.dispose();
      expect(readdirSync(tempDir)).toEqual([]);
    } finally {
      process.umask(previous);
    }
  });
});
