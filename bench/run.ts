/** `sluice bench` entry point (being written). */
export async function runBenchCommand(argv: string[]): Promise<void> {
  throw new Error(`sluice bench is not ready yet (args: ${argv.join(' ')})`);
}
