// docs/deploy is not run here (no Docker), so it is kept true by reading it: the Sluice
// configs it ships parse, and the topology (services, mounts, probes, ports) is consistent
// with those configs. The same topology runs for real in the other test/cluster files.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { parseConfigText } from '../../src/config/load.js';

const DEPLOY = resolve(import.meta.dirname, '../../docs/deploy');

describe('deploy files', () => {
  it('docker-compose.cluster: two Sluice instances, Redis, the Flask/Gunicorn app and a collector, with mounts that exist', () => {
    const compose = parse(readFileSync(resolve(DEPLOY, 'docker-compose.cluster.yml'), 'utf8'));
    expect(Object.keys(compose.services).sort()).toEqual(['app', 'otel-collector', 'redis', 'sluice-a', 'sluice-b']);
    for (const service of Object.values<any>(compose.services)) {
      for (const volume of service.volumes ?? []) expect(existsSync(resolve(DEPLOY, String(volume).split(':')[0]!))).toBe(true);
    }
    expect(existsSync(resolve(DEPLOY, compose.services['sluice-a'].build.context, 'Dockerfile'))).toBe(true);
    const env = compose.services['sluice-b'].environment;
    const config = parseConfigText(readFileSync(resolve(DEPLOY, 'sluice-cluster.yaml'), 'utf8'), 'sluice-cluster.yaml', env);
    expect(config.backend.servers).toHaveLength(1);
    expect(config.backend.servers[0]).toMatchObject({ url: 'http://app:8000', slots: 50 });
    expect(config.cluster).toMatchObject({ redis: 'redis://redis:6379/0', fallback_slots: 25 });
    expect(config.tracing.endpoint).toBe('http://otel-collector:4318/v1/traces');
    // Two instances on fallback never exceed the backend's slots.
    expect(2 * config.cluster!.fallback_slots).toBeLessThanOrEqual(config.backend.servers[0]!.slots);
    expect(compose.services['sluice-b'].ports).toEqual(['8081:8080']);
    expect(config.listen.port).toBe(8080);
    expect(existsSync(resolve(dirname(resolve(DEPLOY, 'docker-compose.cluster.yml')), compose.services.app.volumes[0].split(':')[0], 'gunicorn.conf.py'))).toBe(true);
  });

  it('k8s: the ConfigMap parses; 2 replicas; probes hit the admin port inside the pod; the Service targets the gateway port', () => {
    const docs = parseAllDocuments(readFileSync(resolve(DEPLOY, 'k8s.yaml'), 'utf8')).map((d) => d.toJS());
    const configMap = docs.find((d) => d.kind === 'ConfigMap');
    const deployment = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'sluice');
    const service = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'sluice');
    expect(docs.some((d) => d.kind === 'Service' && d.metadata.name === 'redis')).toBe(true);
    const container = deployment.spec.template.spec.containers[0];
    const env = Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    const config = parseConfigText(configMap.data['sluice.yaml'], 'sluice.yaml', env);
    expect(deployment.spec.replicas).toBe(2);
    expect(config.cluster).toMatchObject({ redis: 'redis://redis:6379/0', fallback_slots: 25 });
    expect(2 * config.cluster!.fallback_slots).toBeLessThanOrEqual(config.backend.servers[0]!.slots);
    const probe = (p: { exec: { command: string[] } }) => p.exec.command.join(' ');
    expect(probe(container.readinessProbe)).toContain(`http://127.0.0.1:${config.admin.port}/readyz`);
    expect(probe(container.livenessProbe)).toContain(`http://127.0.0.1:${config.admin.port}/healthz`);
    expect(container.ports).toEqual([{ name: 'http', containerPort: config.listen.port }]);
    expect(service.spec.ports[0].targetPort).toBe('http');
    // Draining must finish before Kubernetes sends SIGKILL.
    expect(config.shutdown.grace).toBeLessThan(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000);
  });
});
