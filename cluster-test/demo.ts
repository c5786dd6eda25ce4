/**
 * The README's demo: a swarm of four test hosts on this machine (network namespaces on a fabric, one
 * daemon each). The image exists on the manager only: it is pushed once to a registry on the
 * manager's host, and every worker pulls it when it first needs it. A web service with three replicas
 * on an attachable overlay network, published on port 8080, proof that every host answers on it from
 * different replicas, a standalone container on the overlay reaching the service by name; then
 * scaled, updated (rolling), drained, torn down (the registry with it).
 */
import { execFile } from 'node:child_process';
import { CliError, createCluster, IMAGE, type Cluster, type Host } from './harness.js';
import { insecureRegistryArgs, startHostRegistry } from './registry.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function run(host: Host, args: string[]): Promise<string> {
  const shown = args.map((a) => (/[\s$;|"]/.test(a) ? `'${a}'` : a)).join(' ');
  process.stdout.write(`\n${bold(`${host.name}$ tsswarm ${shown}`)}\n`);
  const r = await host.cli(args, 180_000);
  // What a user sees: the pull's lines ("Unable to find image ... locally", the layers) go to stderr.
  process.stdout.write(r.stderr + r.stdout);
  if (r.code !== 0) throw new CliError(args, r);
  return r.stdout;
}

function curl(from: Host, url: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=/run/netns/${from.netns}`, '--', 'curl', '-sS', '-m', '3', url], { encoding: 'utf8' },
      (err, stdout, stderr) => resolve(err ? `error: ${stderr.trim() || err.message}` : stdout.trim()));
  });
}

async function showMesh(cluster: Cluster): Promise<void> {
  const client = cluster.workers()[0]!;
  process.stdout.write(`\n${bold(`from ${client.name}: curl http://<every host>:8080/ (each replica answers with its hostname)`)}\n`);
  for (const target of cluster.hosts) {
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push(await curl(client, `http://${target.ip}:8080/`));
    process.stdout.write(`  ${target.name} ${target.ip}:8080 -> ${answers.join(', ')}\n`);
  }
}

const cluster = await createCluster({
  hosts: 4, managers: 1, heartbeat: '1s', loadImage: 'first', daemonArgs: insecureRegistryArgs(1), log: (l) => process.stdout.write(`${l}\n`),
});
const registry = await startHostRegistry(cluster, cluster.hosts[0]!).catch(async (err) => { await cluster.destroy(); throw err; });
try {
  const [manager] = cluster.managers();
  const workers = cluster.workers();
  // Ship: the manager's image goes to the registry once; the workers have none and pull it.
  const image = `${registry.addr}/${IMAGE}`;
  await run(manager!, ['image', 'tag', IMAGE, image]);
  await run(manager!, ['image', 'push', image]);
  await run(workers[0]!, ['container', 'run', '--rm', '--hostname', 'demo', '--memory', '64m', image, 'sh', '-c', 'echo hello from $(hostname), pid $$']);
  await run(manager!, ['node', 'ls']);
  await run(manager!, ['node', 'update', '--availability', 'drain', manager!.name]);
  await run(manager!, ['network', 'create', '--driver', 'overlay', '--attachable', 'web-net']);
  await run(manager!, ['service', 'create', '--name', 'web', '--replicas', '3', '--network', 'web-net', '--publish', '8080:80', image,
    'sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www']);
  await run(manager!, ['service', 'ps', 'web']);
  await showMesh(cluster);
  // A standalone container on the attachable overlay finds the service by name; its VIP spreads the requests.
  await run(workers[0]!, ['container', 'run', '--rm', '--network', 'web-net', image, 'sh', '-c',
    'nslookup web; for i in 1 2 3; do printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 web 80 | tail -n 1; done']);
  await run(manager!, ['service', 'scale', 'web=6']);
  await run(manager!, ['service', 'update', '--env-add', 'RELEASE=2', '--update-parallelism', '2', '--update-order', 'start-first', 'web']);
  await run(manager!, ['node', 'update', '--availability', 'drain', workers[2]!.name]);
  await new Promise((r) => setTimeout(r, 3000));
  await run(manager!, ['service', 'ps', '-f', 'desired-state=running', 'web']);
  await showMesh(cluster);
  await run(manager!, ['service', 'rm', 'web']);
  const served = registry.traffic();
  process.stdout.write(`\n${bold(`the registry served ${served.bytesServed} bytes: ${Object.entries(served.byClient).map(([ip, n]) => `${ip} ${n}`).join(', ')}`)}\n`);
  process.stdout.write(`\n${bold('demo done: tearing the test hosts down')}\n`);
} finally {
  await registry.stop().catch(() => {});
  await cluster.destroy();
}
process.exit(0);
