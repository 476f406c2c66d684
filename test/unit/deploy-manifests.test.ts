/**
 * The deployment manifests: deploy/kubernetes/daemonset.yaml validated against the Kubernetes
 * OpenAPI schema (kubernetes-models: types, enums and required fields; it does not reject unknown
 * fields, so the fields that matter are checked by name below), and deploy/compose.yaml carrying
 * what the sidecar needs (host network, exactly NET_RAW and NET_ADMIN, the socket read-only).
 */
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { parse } from 'yaml';

// kubernetes-models (devDependency) is loaded by name at run time so that type-checking the
// project does not depend on its declarations; the fields checked below are typed here.
interface Container {
  image?: string;
  args?: string[];
  securityContext?: { privileged?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface DaemonSetDoc {
  kind?: string;
  spec?: {
    selector: { matchLabels?: Record<string, string> };
    template: {
      metadata?: { labels?: Record<string, string> };
      spec?: { hostNetwork?: boolean; containers: Container[]; volumes?: { name: string; hostPath?: { path: string } }[] };
    };
  };
}
const MODELS = 'kubernetes-models/apps/v1/DaemonSet';
const { DaemonSet } = (await import(MODELS)) as { DaemonSet: new (doc: unknown) => DaemonSetDoc & { validate(): void } };

const root = new URL('../..', import.meta.url).pathname;
const load = (f: string): unknown => parse(readFileSync(`${root}${f}`, 'utf8'));

/** The sidecar's command line: `run`, an interface, --docker. */
function checkArgs(t: Test, args: unknown): void {
  t.ok(Array.isArray(args), 'arguments are a list');
  const a = args as string[];
  t.equal(a[0], 'run');
  t.ok(a.includes('--interface') && a.includes('--docker'), `run --interface IF --docker: ${a.join(' ')}`);
}

t.test('the DaemonSet is valid against the Kubernetes schema', async (t) => {
  const doc = load('deploy/kubernetes/daemonset.yaml');
  t.doesNotThrow(() => new DaemonSet(doc).validate(), 'schema-valid apps/v1 DaemonSet');
  // The validator can fail: a wrong type is rejected.
  const broken = structuredClone(doc) as { spec: { template: { spec: { hostNetwork: unknown } } } };
  broken.spec.template.spec.hostNetwork = 'yes';
  t.throws(() => new DaemonSet(broken).validate(), 'hostNetwork: "yes" is rejected');
});

t.test('the DaemonSet runs on the host network with NET_RAW and NET_ADMIN only', async (t) => {
  const ds = new DaemonSet(load('deploy/kubernetes/daemonset.yaml'));
  t.equal(ds.kind, 'DaemonSet');
  const pod = ds.spec!.template.spec!;
  t.equal(pod.hostNetwork, true, 'hostNetwork');
  t.equal(pod.containers.length, 1);
  const c = pod.containers[0]!;
  t.equal(c.image, 'ndp-responder:latest');
  checkArgs(t, c.args);
  const sc = c.securityContext!;
  t.same(sc.capabilities?.drop, ['ALL'], 'drops every capability');
  t.same([...(sc.capabilities?.add ?? [])].sort(), ['NET_ADMIN', 'NET_RAW'], 'adds back NET_RAW and NET_ADMIN');
  t.equal(sc.privileged, undefined, 'not privileged');
  t.equal(sc.allowPrivilegeEscalation, false);
  const mount = c.volumeMounts?.find((m) => m.mountPath === '/var/run/docker.sock');
  t.equal(mount?.readOnly, true, 'Docker socket mounted read-only');
  const vol = pod.volumes?.find((v) => v.name === mount?.name);
  t.equal(vol?.hostPath?.path, '/var/run/docker.sock');
  t.same(ds.spec!.selector.matchLabels, ds.spec!.template.metadata?.labels, 'selector matches the pod labels');
});

t.test('compose: host network, two capabilities, read-only socket, restart unless-stopped', async (t) => {
  const doc = load('deploy/compose.yaml') as { services: Record<string, Record<string, unknown>> };
  const svc = doc.services['ndp-responder'];
  t.ok(svc, 'service ndp-responder');
  t.equal(svc!['image'], 'ndp-responder:latest');
  checkArgs(t, svc!['command']);
  t.equal(svc!['network_mode'], 'host');
  t.same(svc!['cap_drop'], ['ALL']);
  t.same([...(svc!['cap_add'] as string[])].sort(), ['NET_ADMIN', 'NET_RAW']);
  t.ok((svc!['volumes'] as string[]).includes('/var/run/docker.sock:/var/run/docker.sock:ro'), 'socket read-only');
  t.equal(svc!['restart'], 'unless-stopped');
  t.equal(svc!['privileged'], undefined, 'not privileged');
});
