// One real Kubernetes node for the harness: containerd (Debian's) + runc + the CNI bridge plugin,
// kubelet and kube-scheduler (built by build.sh from the same k8s.io/kubernetes module set as the
// API server). Opt-in (startHarness({ node: true }), `npm run harness -- --node`, or
// IMAGE_CLONE_HARNESS_NODE=1): it needs root, and only one node can run on a machine at a time,
// because kubelet and containerd hard-code a few host paths.
//
// Addressing: a bridge `icnode0` with 10.88.0.1/24 (pods get 10.88.0.0/24, and no default route,
// only a route to the service range). The registries listen on 10.88.0.1, so containerd (host
// network namespace) and pods reach them under the same references. Pods reach the API server at
// https://10.0.0.1:443 (the `kubernetes` Service, what in-cluster config uses): 10.0.0.1/32 is also an
// address of the bridge, where a TCP relay in the harness process forwards to the API server on
// 127.0.0.1. No iptables rule and no sysctl on the network path are needed.
//
// stopNode() is also run before every start: it clears what a crashed run left (processes,
// containers, mounts, cgroups, the bridge, kubelet's kernel tunables, hard-coded folders).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, type V1Node } from '@kubernetes/client-node';
import { checkMachine, nodeLockPath, PrerequisiteError } from './prerequisites.ts';

export const nodeName = 'image-clone-node';
export const bridge = 'icnode0';
export const nodeAddress = '10.88.0.1';
export const podCIDR = '10.88.0.0/24';
export const serviceIP = '10.0.0.1';
const serviceCIDR = '10.0.0.0/24';
/** Fixed, so that a later start finds what a crashed run left. */
export const nodeRunDir = '/var/lib/image-clone-node';
const containerdSocket = join(nodeRunDir, 'containerd/containerd.sock');
const runcRoot = join(nodeRunDir, 'runc');
/** Host paths kubelet or containerd use whatever they are told; removed at stop when a start created them. */
const hardCodedPaths = ['/var/lib/kubelet', '/var/log/containers', '/var/log/pods', '/var/lib/cni', '/run/containerd', '/etc/cni', '/opt/cni'];
/** The kernel settings kubelet changes at start (it has no option to leave them alone): restored at stop. */
export const kubeletTunables = ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes'];
const cniBinDir = '/usr/lib/cni';

const lockPath = nodeLockPath;

/**
 * Waits until no other live process on this machine holds the node (another worktree's or clone's
 * `npm test`), then takes it. Returns the release function. A lock whose holder died is taken over.
 */
export async function acquireNodeLock(timeoutMs = 30 * 60_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        if (tryReadFile(lockPath)?.trim() === String(process.pid)) unlinkSync(lockPath);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(tryReadFile(lockPath)?.trim());
    if (!holder || !alive(holder)) {
      // Its holder is gone (crashed): take the lock over; stopNode then clears what it left.
      try { unlinkSync(lockPath); } catch { /* someone else took it over first */ }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the harness node is held by process ${holder} (${lockPath}) for ${timeoutMs / 60_000} min: one node per machine`);
    if (!told) process.stderr.write(`harness: waiting for the node held by process ${holder} (one node per machine)\n`);
    told = true;
    await sleep(1000);
  }
}

/** Facts about the node, in env.json under `node`. */
export interface NodeFacts {
  name: string;
  /** The bridge's address: kubelet, and the registries, listen here. */
  address: string;
  bridge: string;
  podCIDR: string;
  /** How pods reach the API server (the `kubernetes` Service, relayed to the API server). */
  apiServerFromPods: string;
  containerdSocket: string;
  /** containerd's registry host folders: one `HOST:PORT/hosts.toml` per plain-HTTP registry. */
  registryHostsDir: string;
  /** The pod sandbox image, in `source`. */
  sandboxImage: string;
  runDir: string;
  logs: Record<'containerd' | 'kubelet' | 'scheduler', string>;
}

export interface RunningNode {
  facts: NodeFacts;
  stop(): Promise<void>;
}

/** What the node needs from the rest of the harness. */
export interface NodeInputs {
  kubeconfig: string;
  caFile: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Registry hosts (HOST:PORT on the node address) containerd may pull from over plain HTTP. */
  registryHosts: string[];
  sandboxImage: string;
  /** Pushes the images containerd needs (the sandbox image) while the node starts. */
  pushImages: () => Promise<void>;
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => {
  try {
    return run(cmd, args);
  } catch {
    return undefined;
  }
};

/** Checks what the node needs from the machine and the build; throws one line saying what is missing. */
export function checkNodePrerequisites(binDir: string): void {
  checkMachine({ node: true, test: false, build: false, command: 'the harness node' });
  const missing = ['kubelet', 'kube-scheduler'].map((b) => join(binDir, b)).filter((p) => !existsSync(p));
  if (missing.length) throw new PrerequisiteError(`the harness node is missing ${missing.join(', ')}: run 'npm run harness:build'`);
}

/** Creates the bridge with the node address and the service address (before the registries bind to it). */
export function setUpNodeNetwork(): void {
  run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  run('ip', ['addr', 'add', `${nodeAddress}/24`, 'dev', bridge]);
  run('ip', ['addr', 'add', `${serviceIP}/32`, 'dev', bridge]);
  run('ip', ['link', 'set', bridge, 'up']);
}

/** Starts containerd, kubelet and kube-scheduler; resolves once the node is Ready and schedulable. */
export async function startNode(binDir: string, logDir: string, inputs: NodeInputs): Promise<RunningNode> {
  const children: Array<{ name: string; child: ChildProcess }> = [];
  let relay: Server | undefined;
  const logs = { containerd: join(logDir, 'containerd.log'), kubelet: join(logDir, 'kubelet.log'), scheduler: join(logDir, 'kube-scheduler.log') };
  const stop = async () => {
    relay?.close();
    const leftovers = await stopNode(children);
    if (leftovers.length) throw new Error(`the harness node left ${leftovers.join('; ')}`);
  };
  try {
    await mkdir(nodeRunDir, { recursive: true, mode: 0o700 });
    // Remember what this start creates or changes on the host, for stopNode (also after a crash).
    await writeFile(join(nodeRunDir, 'created-paths.json'), JSON.stringify(hardCodedPaths.filter((p) => !existsSync(p))));
    await writeFile(join(nodeRunDir, 'tunables.json'), JSON.stringify(Object.fromEntries(kubeletTunables.map((t) => [t, readFileSync(`/proc/sys/${t}`, 'utf8').trim()]))));

    relay = await startRelay(inputs.server);
    const registryHostsDir = join(nodeRunDir, 'containerd/certs.d');
    for (const host of inputs.registryHosts) await trustRegistryHost(host, registryHostsDir);
    await writeNodeConfig(inputs);
    const pushed = inputs.pushImages();

    children.push({ name: 'containerd', child: await startChild('containerd', '/usr/bin/containerd', ['--config', join(nodeRunDir, 'containerd.toml')], logs.containerd) });
    await waitFor('containerd socket', async () => existsSync(containerdSocket), 30_000, children);
    await pushed;
    children.push({ name: 'kubelet', child: await startChild('kubelet', join(binDir, 'kubelet'), [
      `--config=${join(nodeRunDir, 'kubelet.yaml')}`,
      `--kubeconfig=${inputs.kubeconfig}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${nodeAddress}`,
      `--root-dir=${join(nodeRunDir, 'kubelet')}`,
      '--v=1',
    ], logs.kubelet) });
    children.push({ name: 'kube-scheduler', child: await startChild('kube-scheduler', join(binDir, 'kube-scheduler'), [
      `--kubeconfig=${inputs.kubeconfig}`,
      `--authentication-kubeconfig=${inputs.kubeconfig}`,
      `--authorization-kubeconfig=${inputs.kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--v=1',
    ], logs.scheduler) });

    // Ready, then untainted: TaintNodesByCondition adds not-ready:NoSchedule to a new Node, and only the
    // node-lifecycle controller (not run by the harness) would take it off.
    const kc = new KubeConfig();
    kc.loadFromFile(inputs.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    let node: V1Node | undefined;
    await waitFor('the node to be Ready', async () => {
      node = await core.readNode({ name: nodeName }).catch(() => undefined);
      return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    }, 60_000, children);
    const taints = node?.spec?.taints ?? [];
    const kept = taints.filter((t) => t.key !== 'node.kubernetes.io/not-ready');
    if (kept.length !== taints.length) {
      await core.patchNode({ name: nodeName, body: [{ op: 'replace', path: '/spec/taints', value: kept }] });
    }

    return {
      facts: {
        name: nodeName, address: nodeAddress, bridge, podCIDR, apiServerFromPods: `https://${serviceIP}:443`,
        containerdSocket, registryHostsDir, sandboxImage: inputs.sandboxImage, runDir: nodeRunDir, logs,
      },
      stop,
    };
  } catch (err) {
    await stop().catch((stopErr: Error) => process.stderr.write(`${stopErr.message}\n`));
    throw err;
  }
}

/** Lets containerd pull from HOST:PORT over plain HTTP (a folder per host, read at each pull). */
export async function trustRegistryHost(host: string, registryHostsDir = join(nodeRunDir, 'containerd/certs.d')): Promise<void> {
  const dir = join(registryHostsDir, host);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'hosts.toml'), `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`);
}

async function writeNodeConfig(inputs: NodeInputs): Promise<void> {
  const d = nodeRunDir;
  await mkdir(join(d, 'cni/net.d'), { recursive: true });
  await mkdir(join(d, 'pod-logs'), { recursive: true });
  await writeFile(join(d, 'containerd.toml'), `# containerd 1.6 (Debian 12) for the harness node: CRI only, everything under ${d}.
version = 2
root = "${d}/containerd/root"
state = "${d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${containerdSocket}"
[ttrpc]
  address = "${containerdSocket}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${inputs.sandboxImage}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # Root in this VM has no CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj (kubelet asks -998
  # for the sandbox); without this every sandbox fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "${runcRoot}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${cniBinDir}"
    conf_dir = "${d}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${d}/containerd/certs.d"
`);
  // No default route in pods: the pod range is on the bridge, and only the service range is routed.
  await writeFile(join(d, 'cni/net.d/10-harness.conflist'), JSON.stringify({
    cniVersion: '0.4.0', name: 'image-clone-harness',
    plugins: [{
      type: 'bridge', bridge, isGateway: false, ipMasq: false, hairpinMode: true,
      ipam: { type: 'host-local', dataDir: join(d, 'cni/ipam'), ranges: [[{ subnet: podCIDR, gateway: nodeAddress }]], routes: [{ dst: serviceCIDR, gw: nodeAddress }] },
    }],
  }, null, 2));
  await writeFile(join(d, 'resolv.conf'), '# pods of the harness node have no DNS server\noptions ndots:1\n');
  await writeFile(join(d, 'kubelet.yaml'), `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false            # this VM is cgroup v1; kubelet 1.36 refuses it by default
cgroupDriver: cgroupfs         # no systemd here
containerRuntimeEndpoint: unix://${containerdSocket}
makeIPTablesUtilChains: false  # else kubelet adds KUBE-FIREWALL chains to the host's INPUT and OUTPUT
address: ${nodeAddress}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: ${inputs.caFile}}   # the API server presents the harness's admin certificate
authorization: {mode: AlwaysAllow}
failSwapOn: false
resolvConf: ${d}/resolv.conf
podLogsDir: ${d}/pod-logs
volumePluginDir: ${d}/volume-plugins
serializeImagePulls: false
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 60
syncFrequency: 10s
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 10s
`);
}

/** Relays serviceIP:443 (the address pods use for the API server) to the API server on loopback. */
function startRelay(server: string): Promise<Server> {
  const target = new URL(server);
  const relay = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    client.pipe(upstream).pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  return new Promise((resolve, reject) => {
    relay.once('error', reject);
    relay.listen(443, serviceIP, () => {
      relay.unref();
      resolve(relay);
    });
  });
}

async function startChild(name: string, bin: string, args: string[], logPath: string): Promise<ChildProcess> {
  const fd = openSync(logPath, 'a');
  // setpriv --pdeathsig: if the harness process dies, the kernel kills the node's daemons too.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', bin, ...args], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`${name} could not start: ${err.message}`)));
  });
  const pids = await readPids();
  pids.push({ pid: child.pid!, bin });
  await writeFile(join(nodeRunDir, 'pids.json'), JSON.stringify(pids));
  return child;
}

async function readPids(): Promise<Array<{ pid: number; bin: string }>> {
  try {
    return JSON.parse(await readFile(join(nodeRunDir, 'pids.json'), 'utf8'));
  } catch {
    return [];
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, children: Array<{ name: string; child: ChildProcess }>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    const dead = children.find(({ child }) => child.exitCode !== null || child.signalCode !== null);
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what} (see its log in the harness folder)`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(100);
  }
}

function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(tryReadFile(`/proc/${pid}/status`) ?? '');
function tryReadFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function killAndWait(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(alive)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  while (pids.some(alive)) await sleep(20);
}

/**
 * Stops the node and undoes every change it made to the host. Safe to run at any time: with no node,
 * it finds nothing to do. Ends only processes this harness started (recorded pids whose command line
 * still matches, and containerd shims serving this node's own socket).
 */
export async function stopNode(children: Array<{ name: string; child: ChildProcess }> = []): Promise<string[]> {
  const own = children.map(({ child }) => child.pid!).filter(Boolean);
  const recorded = (await readPids()).filter(({ pid, bin }) => cmdline(pid)?.includes(bin)).map(({ pid }) => pid);
  // kubelet and the scheduler first, then containerd: setpriv execs the daemon, so the pid is the daemon's.
  const pids = [...new Set([...own, ...recorded])];
  const byName = (needle: string) => pids.filter((pid) => cmdline(pid)?.some((a) => a.endsWith(needle)));
  await killAndWait([...byName('kubelet'), ...byName('kube-scheduler')], 10_000);
  await killAndWait(byName('containerd'), 10_000);
  await killAndWait(pids, 1_000);

  // Containers: runc's state is under the node folder (one root per containerd namespace). Kill and
  // delete them, which also frees their cgroups.
  const runcRoots = existsSync(runcRoot) ? [runcRoot, ...readdirSync(runcRoot).map((n) => join(runcRoot, n))] : [];
  for (const root of runcRoots) {
    for (const id of (tryRun('runc', ['--root', root, 'list', '-q']) ?? '').split('\n').filter(Boolean)) {
      tryRun('runc', ['--root', root, 'kill', id, 'KILL']);
      tryRun('runc', ['--root', root, 'delete', '--force', id]);
    }
  }
  // The shims of this node's containerd (they outlive it by design).
  const shims = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)
    .filter((pid) => { const c = cmdline(pid); return c?.[0]?.endsWith('containerd-shim-runc-v2') && c.includes(containerdSocket); });
  await killAndWait(shims, 2_000);
  // Whatever still runs in the pods' cgroups (after a crash, runc's state may be gone already).
  for (let attempt = 0; attempt < 20; attempt++) {
    const left = podProcesses();
    if (!left.length) break;
    for (const pid of left) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await sleep(100);
  }

  // Mounts: container root file systems, volumes, network namespaces, shm.
  const roots = [nodeRunDir, '/run/containerd', '/var/lib/kubelet'];
  for (let attempt = 0; attempt < 3; attempt++) {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
      .filter((m): m is string => !!m && roots.some((r) => m === r || m.startsWith(`${r}/`)))
      .sort((a, b) => b.length - a.length);
    if (!mounts.length) break;
    for (const m of mounts) tryRun('umount', [m]) ?? tryRun('umount', ['-l', m]);
  }

  // Network: pod veths, then the bridge (which also takes the node and service addresses with it).
  if (tryRun('ip', ['link', 'show', bridge]) !== undefined) {
    for (const line of (tryRun('ip', ['-o', 'link', 'show', 'master', bridge]) ?? '').split('\n').filter(Boolean)) {
      const name = /^\d+:\s+([^@:]+)/.exec(line)?.[1];
      if (name) tryRun('ip', ['link', 'del', name]);
    }
    tryRun('ip', ['link', 'del', bridge]);
  }

  // cgroups kubelet made (per QoS class and per pod), deepest first; only empty ones can go.
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const top = join('/sys/fs/cgroup', controller, 'kubepods');
    if (existsSync(top)) removeCgroupTree(top);
  }

  // Kernel settings kubelet changed.
  const problems: string[] = [];
  const tunables = tryReadFile(join(nodeRunDir, 'tunables.json'));
  if (tunables) {
    for (const [name, value] of Object.entries(JSON.parse(tunables) as Record<string, string>)) {
      if (tryReadFile(`/proc/sys/${name}`)?.trim() !== value) await writeFile(`/proc/sys/${name}`, value).catch(() => {});
      const now = tryReadFile(`/proc/sys/${name}`)?.trim();
      if (now !== value) problems.push(`sysctl ${name.replaceAll('/', '.')} is ${now}, was ${value}`);
    }
  }
  // Host folders kubelet and containerd hard-code, when a start created them.
  const created = tryReadFile(join(nodeRunDir, 'created-paths.json'));
  for (const path of created ? (JSON.parse(created) as string[]) : []) {
    if (hardCodedPaths.includes(path)) await rm(path, { recursive: true, force: true });
  }
  await rm(nodeRunDir, { recursive: true, force: true });
  return [...problems, ...nodeLeftovers()];
}

/** The processes in kubelet's pod cgroups (every pod's containers and sandboxes). */
function podProcesses(): number[] {
  const pids = new Set<number>();
  const walk = (dir: string) => {
    for (const pid of (tryReadFile(join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean)) pids.add(Number(pid));
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch { /* gone */ }
    for (const entry of entries) walk(join(dir, entry));
  };
  for (const controller of ['pids', 'memory', 'freezer', 'unified']) {
    const top = join('/sys/fs/cgroup', controller, 'kubepods');
    if (existsSync(top)) walk(top);
  }
  return [...pids];
}

function removeCgroupTree(dir: string): void {
  for (const entry of readdirSync(dir)) {
    const child = join(dir, entry);
    try {
      if (statSync(child).isDirectory()) removeCgroupTree(child);
    } catch { /* raced */ }
  }
  try {
    rmdirSync(dir);
  } catch { /* still busy: reported by the leftovers check */ }
}

/** What a node would leave behind on this host; empty when the machine is clean. */
export function nodeLeftovers(): string[] {
  const found: string[] = [];
  if (existsSync(nodeRunDir)) found.push(nodeRunDir);
  if (tryRun('ip', ['link', 'show', bridge]) !== undefined) found.push(`network link ${bridge}`);
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    if (existsSync(join('/sys/fs/cgroup', controller, 'kubepods'))) found.push(`cgroup ${controller}/kubepods`);
  }
  found.push(...podProcesses().map((pid) => `pod process ${pid} ${cmdline(pid)?.[0] ?? ''}`));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])
    .filter((m) => m && [nodeRunDir, '/run/containerd', '/var/lib/kubelet'].some((r) => m === r || m.startsWith(`${r}/`)));
  found.push(...mounts.map((m) => `mount ${m}`));
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)) {
    const c = cmdline(pid);
    if (c?.some((a) => a.includes(nodeRunDir))) found.push(`process ${pid} ${c[0]}`);
  }
  return found;
}
