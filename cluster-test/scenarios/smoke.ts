/** The harness itself: hosts come up on the fabric, a service spreads, a partition cuts and heals. */
import { run } from '../../testkit/fabric.js';
import { IMAGE } from '../harness.js';
import { sleep, waitConverged, withCluster, type Scenario } from './common.js';

export const smoke: Scenario = {
  description: 'build hosts, form a swarm, run a service, cut and heal a link, tear down',
  inAll: false,
  run: (opts) => withCluster(opts, { hosts: opts.hosts ?? 4, managers: 1 }, async (c) => {
    const log = opts.log ?? (() => {});
    const [m, w] = [c.hosts[0]!, c.hosts[1]!];
    // A TCP connect to the manager's swarm port from inside the other host's namespace.
    const ping = (from: typeof m, to: typeof m) => run('nsenter', [`--net=/run/netns/${from.netns}`, 'timeout', '1', 'bash', '-c', `</dev/tcp/${to.ip}/2377`]).then(() => true, () => false);
    const before = await ping(w, m);
    await c.partition(w, m, { oneWay: true });
    const cut = !(await ping(w, m));
    await c.heal();
    const healed = await ping(w, m);
    log(`tcp connect ${w.name} -> ${m.name}: before ${before}, during one-way cut ${!cut}, after heal ${healed}`);
    await m.ok(['service', 'create', '-d', '--name', 'web', '--replicas', String(c.hosts.length), IMAGE, 'sleep', '3600']);
    const tasks = await waitConverged(c, m, 'web', c.hosts.length);
    log(`web runs on ${tasks.map((t) => t.node).sort().join(',')}`);
    await sleep(10);
    return { scenario: 'smoke', pass: before && cut && healed && tasks.length === c.hosts.length, hosts: c.hosts.length, tasks: tasks.length };
  }),
};
