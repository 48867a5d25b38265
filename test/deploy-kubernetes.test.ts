/**
 * The Kubernetes manifests in deploy/kubernetes: kustomization.yaml lists every manifest, each YAML
 * document passes its Kubernetes schema (kubernetes-models, picked by apiVersion and kind; an unknown
 * kind fails), the vmm DaemonSet is privileged in the host's network with /dev/kvm and /dev/net/tun,
 * each Service reaches a port its Deployment's container has, the addresses between the services name
 * those Services, and every KINDLING_* variable is a setting its service really has.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { envName } from '@kindling/runtime';
import { fetcherSettings } from '../services/fetcher/src/config.ts';
import { plannerSettings } from '../services/planner/src/config.ts';
import { provisionerSettings } from '../services/provisioner/src/config.ts';
import { vmmSettings } from '../services/vmm/src/config.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const dir = join(repoRoot, 'deploy/kubernetes');
const notResources = new Set(['kustomization.yaml', 'nats-values.yaml']);

/** Every setting's environment variable, per service (packages/runtime/src/config.ts envName). */
const settingsOf = { planner: plannerSettings, fetcher: fetcherSettings, vmm: vmmSettings, provisioner: provisionerSettings };
type Service = keyof typeof settingsOf;
const services = Object.keys(settingsOf) as Service[];
const prefixOf = (service: Service): string => `KINDLING_${service.toUpperCase()}`;
// KINDLING_<SERVICE>_METRICS_PORT (--metrics-port, the manifests' 9464) is among them: every service has
// serverSettings() of packages/runtime/src/config.ts, which declares metricsPort.
const envNames = (service: Service): Set<string> =>
  new Set(Object.keys(settingsOf[service]).map((key) => envName(prefixOf(service), key)));
const defaultPort = (service: Service): number => settingsOf[service].port.default as number;

// Loose views of the manifests, enough for the structural checks below (the schemas check the rest).
type Obj = Record<string, unknown>;
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath?: string } };
}
interface Port {
  name?: string;
  containerPort: number;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  ports?: Port[];
  securityContext?: Obj & { privileged?: boolean; readOnlyRootFilesystem?: boolean };
  readinessProbe?: { grpc?: { port: number } };
  livenessProbe?: { grpc?: { port: number } };
  resources?: { requests?: Obj; limits?: Obj };
  volumeMounts?: Array<{ name: string; mountPath: string; mountPropagation?: string }>;
}
interface PodSpec {
  containers: Container[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  dnsPolicy?: string;
  nodeSelector?: Record<string, string>;
  securityContext?: { runAsNonRoot?: boolean };
  volumes?: Array<{ name: string; hostPath?: { path: string } }>;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> } | Record<string, string>;
    ports?: Array<{ name?: string; port: number; targetPort?: number | string }>;
    template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
}

type ModelClass = new (data: unknown) => { validate(): void; apiVersion?: string; kind?: string };

/**
 * Validates one document against its Kubernetes schema: the kubernetes-models class for its
 * apiVersion and kind (kubernetes-models/<apiVersion>/<kind>, "v1" for the core group). Throws on a
 * kind kubernetes-models does not know and on any schema violation.
 */
async function validateManifest(doc: unknown): Promise<void> {
  assert.ok(doc !== null && typeof doc === 'object' && !Array.isArray(doc), 'a manifest is a mapping');
  const { apiVersion, kind } = doc as Obj;
  assert.ok(typeof apiVersion === 'string' && /^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion), `bad apiVersion ${String(apiVersion)}`);
  assert.ok(typeof kind === 'string' && /^[A-Z][A-Za-z0-9]*$/.test(kind), `bad kind ${String(kind)}`);
  let Model: ModelClass | undefined;
  try {
    const module = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as Record<string, ModelClass | undefined>;
    Model = module[kind];
  } catch {
    Model = undefined;
  }
  assert.ok(Model, `unknown kind ${apiVersion} ${kind}: kubernetes-models has no schema for it`);
  const model = new Model(doc);
  assert.equal(`${model.apiVersion}/${model.kind}`, `${apiVersion}/${kind}`, 'the model is of the kind asked for');
  model.validate();
}

interface Loaded {
  file: string;
  doc: Manifest;
}

function readYaml(file: string): unknown[] {
  return parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((document) => {
    assert.deepEqual(document.errors, [], `${file}: YAML errors`);
    return document.toJS() as unknown;
  });
}

describe('deploy/kubernetes', () => {
  let resources: string[] = [];
  let manifests: Loaded[] = [];
  const byKind = (kind: string): Loaded[] => manifests.filter((m) => m.doc.kind === kind);
  const component = (m: Manifest): Service => {
    const name = m.metadata.labels?.['app.kubernetes.io/component'];
    assert.ok(services.includes(name as Service), `${m.kind} ${m.metadata.name}: component label names a service (${name})`);
    return name as Service;
  };
  const workloads = (): Loaded[] => [...byKind('Deployment'), ...byKind('DaemonSet')];

  before(() => {
    const [kustomization, ...more] = readYaml('kustomization.yaml') as Obj[];
    assert.equal(more.length, 0);
    assert.equal(kustomization?.apiVersion, 'kustomize.config.k8s.io/v1beta1');
    assert.equal(kustomization?.kind, 'Kustomization');
    assert.equal(kustomization?.namespace, 'kindling');
    assert.ok(Array.isArray(kustomization?.resources));
    resources = kustomization.resources as string[];
    manifests = resources.flatMap((file) =>
      readYaml(file)
        .filter((doc) => doc !== null)
        .map((doc) => ({ file, doc: doc as Manifest })),
    );
  });

  it('kustomization.yaml lists every manifest in the directory, once', () => {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
      .filter((f) => !notResources.has(f))
      .sort();
    assert.deepEqual([...resources].sort(), files);
    assert.equal(new Set(resources).size, resources.length);
  });

  it('every document passes its Kubernetes schema', async () => {
    assert.ok(manifests.length >= 8, `only ${manifests.length} documents`);
    for (const { file, doc } of manifests) {
      await assert.doesNotReject(validateManifest(doc), `${file}: ${doc.kind} ${doc.metadata?.name}`);
    }
    const kinds = manifests.map((m) => m.doc.kind).sort();
    assert.deepEqual(kinds, ['DaemonSet', 'Deployment', 'Deployment', 'Deployment', 'Namespace', 'Service', 'Service', 'Service']);
  });

  it('the validation rejects what the schema forbids', async () => {
    const planner = structuredClone(byKind('Deployment').find((m) => component(m.doc) === 'planner')!.doc);
    await assert.doesNotReject(validateManifest(planner));
    const badReplicas = structuredClone(planner) as unknown as { spec: Obj };
    badReplicas.spec.replicas = 'one';
    await assert.rejects(validateManifest(badReplicas), /replicas must be integer/);
    const noName = structuredClone(planner);
    delete (noName.spec!.template!.spec.containers[0] as Partial<Container>).name;
    await assert.rejects(validateManifest(noName), /must have required property 'name'|required property name/);
    await assert.rejects(validateManifest({ apiVersion: 'example.dev/v1', kind: 'Widget', metadata: { name: 'w' } }), /unknown kind/);
    await assert.rejects(validateManifest({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'w' } }), /unknown kind/);
  });

  it('everything is in the namespace kindling', () => {
    const [namespace] = byKind('Namespace');
    assert.equal(namespace?.doc.metadata.name, 'kindling');
    for (const { doc } of manifests) if (doc.kind !== 'Namespace') assert.equal(doc.metadata.namespace, 'kindling', doc.metadata.name);
  });

  it('the vmm is a privileged DaemonSet in the host network on KVM nodes, with /dev/kvm and /dev/net/tun', () => {
    const daemonSets = byKind('DaemonSet');
    assert.equal(daemonSets.length, 1);
    const vmm = daemonSets[0]!.doc;
    assert.equal(component(vmm), 'vmm');
    const pod = vmm.spec!.template!.spec;
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.hostPID, true);
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
    assert.deepEqual(pod.nodeSelector, { 'kindling.dev/kvm': 'true' });
    const [container] = pod.containers;
    assert.equal(container?.securityContext?.privileged, true);
    const hostPaths = new Map(pod.volumes?.map((v) => [v.name, v.hostPath?.path]));
    const mounted = new Map(container.volumeMounts?.map((m) => [m.mountPath, m]));
    for (const path of ['/dev/kvm', '/dev/net/tun', '/var/run/netns', '/etc/cni/conf.d', '/opt/cni/bin', '/var/lib/kindling/vmm', '/var/cache/kindling']) {
      const mount = mounted.get(path);
      assert.ok(mount, `mounts ${path}`);
      assert.equal(hostPaths.get(mount.name), path, `${path} is the node's ${path}`);
    }
    assert.equal(mounted.get('/var/run/netns')?.mountPropagation, 'Bidirectional');
    const env = new Map(container.env?.map((e) => [e.name, e]));
    assert.equal(env.get('KINDLING_VMM_HOST')?.value, '0.0.0.0');
    assert.equal(env.get('KINDLING_VMM_HOST_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName');
    assert.equal(env.get('KINDLING_VMM_NATS_URL')?.value, 'nats://nats.kindling.svc:4222');
  });

  it('each Deployment runs one non-root replica behind a Service on its port', () => {
    const deployments = byKind('Deployment');
    assert.deepEqual(deployments.map((d) => component(d.doc)).sort(), ['fetcher', 'planner', 'provisioner']);
    for (const { doc: deployment } of deployments) {
      const service = component(deployment);
      assert.equal(deployment.spec!.replicas, 1, service);
      const pod = deployment.spec!.template!.spec;
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${service} runs as non-root`);
      const [container] = pod.containers;
      assert.ok(container);
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true, `${service}: read-only root filesystem`);
      assert.ok(container.resources?.requests && container.resources.limits, `${service}: resource requests and limits`);
      // The Service of the same component selects this pod and reaches a port its container has.
      const services = byKind('Service').filter((s) => component(s.doc) === service);
      assert.equal(services.length, 1, `one Service for ${service}`);
      const svc = services[0]!.doc;
      assert.equal(svc.metadata.name, `kindling-${service}`);
      const labels = deployment.spec!.template!.metadata?.labels ?? {};
      for (const [k, v] of Object.entries(svc.spec!.selector as Record<string, string>)) assert.equal(labels[k], v, `${svc.metadata.name} selects ${service}`);
      const ports = container.ports ?? [];
      for (const port of svc.spec!.ports!) {
        const target = port.targetPort ?? port.port;
        const match = ports.find((p) => (typeof target === 'number' ? p.containerPort === target : p.name === target));
        assert.ok(match, `${svc.metadata.name} targetPort ${target} is a port of the ${service} container`);
        assert.equal(match.containerPort, defaultPort(service), `${service} listens on its own port`);
      }
    }
  });

  it('every service listens on its port on all addresses, with gRPC probes and a metrics port', () => {
    for (const { doc } of workloads()) {
      const service = component(doc);
      const prefix = prefixOf(service);
      const template = doc.spec!.template!;
      const [container] = template.spec.containers;
      assert.ok(container);
      assert.deepEqual(container.command, ['node', '--import', 'tsx', `services/${service}/src/main.ts`]);
      const env = new Map(container.env?.map((e) => [e.name, e.value]));
      assert.equal(env.get(`${prefix}_HOST`), '0.0.0.0', `${service} listens beyond loopback`);
      const port = defaultPort(service);
      if (env.has(`${prefix}_PORT`)) assert.equal(Number(env.get(`${prefix}_PORT`)), port);
      const grpc = container.ports?.find((p) => p.containerPort === port);
      assert.ok(grpc, `${service} exposes ${port}`);
      assert.equal(container.readinessProbe?.grpc?.port, port, `${service} readiness probe is gRPC health on ${port}`);
      assert.equal(container.livenessProbe?.grpc?.port, port, `${service} liveness probe is gRPC health on ${port}`);
      const metrics = container.ports?.find((p) => p.name === 'metrics');
      assert.equal(metrics?.containerPort, 9464, `${service} has a metrics port 9464`);
      assert.equal(env.get(`${prefix}_METRICS_PORT`), '9464');
      assert.equal(template.metadata?.annotations?.['prometheus.io/scrape'], 'true');
      assert.equal(template.metadata?.annotations?.['prometheus.io/port'], '9464');
    }
  });

  it('every KINDLING_* variable is a setting of its service', () => {
    let checked = 0;
    for (const { doc } of workloads()) {
      const service = component(doc);
      const known = envNames(service);
      for (const container of doc.spec!.template!.spec.containers) {
        for (const { name } of container.env ?? []) {
          if (!name.startsWith('KINDLING_')) continue;
          checked++;
          assert.ok(name.startsWith(`${prefixOf(service)}_`), `${name} in the ${service} container belongs to another service`);
          assert.ok(known.has(name), `${name} is not a setting of the ${service} (known: ${[...known].join(', ')})`);
        }
      }
    }
    assert.ok(checked >= 20, `only ${checked} variables checked`);
  });

  it('the addresses between the services name their Services and ports', () => {
    const services = new Map(byKind('Service').map((s) => [s.doc.metadata.name, s.doc.spec!.ports!.map((p) => p.port)]));
    const addresses: Array<[Service, string]> = [
      ['planner', 'KINDLING_PLANNER_FETCHER_ADDRESS'],
      ['planner', 'KINDLING_PLANNER_PROVISIONER_ADDRESS'],
      ['provisioner', 'KINDLING_PROVISIONER_FETCHER_ADDRESS'],
    ];
    for (const [service, variable] of addresses) {
      const deployment = byKind('Deployment').find((d) => component(d.doc) === service)!.doc;
      const value = deployment.spec!.template!.spec.containers[0]!.env?.find((e) => e.name === variable)?.value;
      assert.ok(value, `${service} sets ${variable}`);
      const [host, port] = value.split(':');
      assert.ok(services.get(host!)?.includes(Number(port)), `${variable}=${value} is a Service port`);
    }
    // The vmm has no Service (hostNetwork, one per node): the planner names a node's address.
    const planner = byKind('Deployment').find((d) => component(d.doc) === 'planner')!.doc;
    const vmmAddress = planner.spec!.template!.spec.containers[0]!.env?.find((e) => e.name === 'KINDLING_PLANNER_VMM_ADDRESS')?.value;
    assert.match(vmmAddress ?? '', /^[^:]+:50053$/);
    assert.equal(
      planner.spec!.template!.spec.containers[0]!.env?.find((e) => e.name === 'KINDLING_PLANNER_NATS_URL')?.value,
      'nats://nats.kindling.svc:4222',
    );
  });

  it('nats-values.yaml enables JetStream with file storage for the nats/nats chart', () => {
    const [values] = readYaml('nats-values.yaml') as Array<{ config?: Obj }>;
    const jetstream = values?.config?.jetstream as { enabled?: boolean; fileStore?: { enabled?: boolean; pvc?: { size?: string } } } | undefined;
    assert.equal(jetstream?.enabled, true);
    assert.equal(jetstream?.fileStore?.enabled, true);
    assert.match(jetstream?.fileStore?.pvc?.size ?? '', /^\d+[GM]i$/);
    assert.equal((values?.config?.cluster as Obj | undefined)?.enabled, false);
  });
});
