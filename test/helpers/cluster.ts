// Several Sluice instances sharing one Redis, for the scale-out tests: in-process apps on
// port 0, or real `sluice start` processes (dist/src/cli.js) when a test must kill one.
// Each test gets its own key prefix, so tests never see each other's leases.
import { randomBytes } from 'node:crypto';
import { startCliSluice, sluice, writeTempConfig, type RunningSluice, type SluiceProcess } from './harness.js';

export function clusterPrefix(): string {
  return `t${randomBytes(4).toString('hex')}:`;
}

export interface ClusterOptions {
  redisUrl: string;
  prefix: string;
  backendUrl: string;
  slots: number;
  leaseTtl?: string;
  fallbackSlots?: number;
  /** Extra top-level YAML (routes, queue ...). */
  extra?: string;
  /** Extra lines inside the cluster block, indented by two spaces. */
  extraCluster?: string;
}

function clusterYaml(o: ClusterOptions, instance: string): string {
  return [
    `backend:\n  servers:\n    - url: ${o.backendUrl}\n      slots: ${o.slots}`,
    `cluster:\n  redis: ${o.redisUrl}\n  instance_id: ${instance}\n  lease_ttl: ${o.leaseTtl ?? '2s'}\n  fallback_slots: ${o.fallbackSlots ?? 1}\n  key_prefix: "${o.prefix}"\n${o.extraCluster ?? ''}`,
    o.extra ?? '',
  ].join('\n') + '\n';
}

/** Starts `count` in-process instances named a, b, c ... */
export async function startInstances(count: number, o: ClusterOptions): Promise<RunningSluice[]> {
  const names = 'abcdefgh'.slice(0, count).split('');
  return Promise.all(names.map((name) => sluice(clusterYaml(o, name))));
}

/** Starts one instance as a real process; `kill('SIGKILL')` it to test a crash. */
export async function startInstanceProcess(name: string, o: ClusterOptions): Promise<SluiceProcess & { url: string; adminUrl: string }> {
  const yaml = `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nlogging: { level: warn, access_log: false }\njobs: { store: memory }\n${clusterYaml(o, name)}`;
  return startCliSluice(['--config', writeTempConfig(yaml)]);
}
