/**
 * The README's demo: a swarm of four test hosts on this machine (network namespaces on a fabric, one
 * daemon each), a web service with three replicas on an attachable overlay network, published on
 * port 8080, proof that every host answers on it from different replicas, a standalone container on
 * the overlay reaching the service by name; then scaled, updated (rolling), drained, torn down.
 */
import { execFile } from 'node:child_process';
import { createCluster, IMAGE, type Cluster, type Host } from './harness.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function run(host: Host, args: string[]): Promise<string> {
  const shown = args.map((a) => (/[\s$;|"]/.test(a) ? `'${a}'` : a)).join(' ');
  process.stdout.write(`\n${bold(`${host.name}$ tsswarm ${shown}`)}\n`);
  const out = await host.ok(args, 180_000);
  process.stdout.write(out);
  return out;
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

const cluster = await createCluster({ hosts: 4, managers: 1, heartbeat: '1s', log: (l) => process.stdout.write(`${l}\n`) });
try {
  const [manager] = cluster.managers();
  const workers = cluster.workers();
  await run(workers[0]!, ['container', 'run', '--rm', '--hostname', 'demo', '--memory', '64m', IMAGE, 'sh', '-c', 'echo hello from $(hostname), pid $$']);
  await run(manager!, ['node', 'ls']);
  await run(manager!, ['node', 'update', '--availability', 'drain', manager!.name]);
  await run(manager!, ['network', 'create', '--driver', 'overlay', '--attachable', 'web-net']);
  await run(manager!, ['service', 'create', '--name', 'web', '--replicas', '3', '--network', 'web-net', '--publish', '8080:80', IMAGE,
    'sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www']);
  await run(manager!, ['service', 'ps', 'web']);
  await showMesh(cluster);
  // A standalone container on the attachable overlay finds the service by name; its VIP spreads the requests.
  await run(workers[0]!, ['container', 'run', '--rm', '--network', 'web-net', IMAGE, 'sh', '-c',
    'nslookup web; for i in 1 2 3; do printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 web 80 | tail -n 1; done']);
  await run(manager!, ['service', 'scale', 'web=6']);
  await run(manager!, ['service', 'update', '--env-add', 'RELEASE=2', '--update-parallelism', '2', '--update-order', 'start-first', 'web']);
  await run(manager!, ['node', 'update', '--availability', 'drain', workers[2]!.name]);
  await new Promise((r) => setTimeout(r, 3000));
  await run(manager!, ['service', 'ps', '-f', 'desired-state=running', 'web']);
  await showMesh(cluster);
  await run(manager!, ['service', 'rm', 'web']);
  process.stdout.write(`\n${bold('demo done: tearing the test hosts down')}\n`);
} finally {
  await cluster.destroy();
}
process.exit(0);
