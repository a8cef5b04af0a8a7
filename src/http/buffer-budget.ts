// Global byte budgets for buffered request bodies (limits.buffer_memory, limits.buffer_disk):
// many slow or stalled uploads together must not take the process's memory or the disk,
// whatever each one's max_body allows. Past the memory budget bodies spill to a temp file;
// past the disk budget the request is refused (503 buffer_full).
export class BufferBudget {
  private memory = 0;
  private disk = 0;

  constructor(readonly memoryMax: number, readonly diskMax: number) {}

  get memoryUsed(): number { return this.memory; }
  get diskUsed(): number { return this.disk; }

  /** Takes `bytes` of memory budget if it fits. */
  takeMemory(bytes: number): boolean {
    if (this.memory + bytes > this.memoryMax) return false;
    this.memory += bytes;
    return true;
  }

  releaseMemory(bytes: number): void {
    this.memory = Math.max(0, this.memory - bytes);
  }

  takeDisk(bytes: number): boolean {
    if (this.disk + bytes > this.diskMax) return false;
    this.disk += bytes;
    return true;
  }

  releaseDisk(bytes: number): void {
    this.disk = Math.max(0, this.disk - bytes);
  }
}
