/** `tsswarm service create|ls|ps|inspect|scale|rm`. */
import { Command, Option } from 'commander';
import type { ServiceObject, ServiceSpec, TaskObject } from '../api/objects.js';
import type { DaemonClient, SERVICES } from './client.js';
import { capitalise as cap, printJson, printTable, removeEach, truncate, type OutputFormat } from './format.js';
import { ProgressPrinter, progressOf, renderProgress } from './progress.js';
import { parsePublish } from './publish.js';
import { serviceLogsCommand } from './service-logs.js';
import { addLifecycleOptions, serviceUpdateCommands, withLifecycleFlags, type LifecycleFlags } from './service-update.js';
import { formatAgo, parseBytes, parseDurationMs, parseInteger, parseNanoCpus, UsageError } from './units.js';

type Connect = (service: keyof typeof SERVICES) => DaemonClient;
const collect = (v: string, prev: string[]) => [...prev, v];

/** As docker's tables: a pinned image shows as its tag (inspect and --no-trunc keep the digest). */
function shownImage(image: string): string {
  return image.replace(/@sha256:[0-9a-f]{64}$/, '');
}

interface CreateFlags {
  resolveImage?: boolean; withRegistryAuth?: boolean;
  name?: string; replicas?: string; mode: string; env: string[]; reserveCpu?: string; reserveMemory?: string;
  limitCpu?: string; limitMemory?: string; limitPids?: string; constraint: string[]; placementPref: string[];
  maxReplicasPerNode?: string; restartCondition?: string; restartDelay?: string; restartMaxAttempts?: string;
  stopGracePeriod?: string; stopSignal?: string; detach?: boolean; workdir?: string; user?: string; hostname?: string;
  entrypoint?: string; label: string[]; mount: string[]; network: string[]; publish: string[]; endpointMode?: string;
}

function specFromFlags(image: string, args: string[], o: CreateFlags): Partial<ServiceSpec> {
  if (o.mode === 'global' && o.replicas !== undefined) throw new UsageError('--replicas can only be used with replicated mode');
  const labels: Record<string, string> = {};
  for (const l of o.label) {
    const eq = l.indexOf('=');
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  const preferences = o.placementPref.map((p) => {
    const m = /^spread=(.+)$/.exec(p);
    if (!m) throw new UsageError(`invalid placement preference "${p}": expected spread=node.labels.KEY`);
    return { spread: m[1]! };
  });
  const mounts = o.mount.map((m) => {
    const f = Object.fromEntries(m.split(',').map((kv) => kv.split('=', 2) as [string, string]));
    if ((f.type ?? 'bind') !== 'bind' || !f.source || !(f.target ?? f.destination)) {
      throw new UsageError(`invalid mount "${m}": expected type=bind,source=/host/path,target=/path[,readonly]`);
    }
    return { source: f.source, target: (f.target ?? f.destination)!, readOnly: 'readonly' in f || f.ro === 'true' };
  });
  return {
    name: o.name ?? '',
    labels,
    task: {
      image,
      command: o.entrypoint ? [o.entrypoint] : [],
      args,
      env: o.env,
      workingDir: o.workdir ?? '',
      user: o.user ?? '',
      hostname: o.hostname ?? '',
      mounts,
      resources: {
        reservations: {
          nanoCpus: o.reserveCpu ? parseNanoCpus('--reserve-cpu', o.reserveCpu) : 0,
          memoryBytes: o.reserveMemory ? parseBytes('--reserve-memory', o.reserveMemory) : 0,
        },
        limits: {
          nanoCpus: o.limitCpu ? parseNanoCpus('--limit-cpu', o.limitCpu) : 0,
          memoryBytes: o.limitMemory ? parseBytes('--limit-memory', o.limitMemory) : 0,
          pids: o.limitPids ? parseInteger('--limit-pids', o.limitPids, 0) : 0,
        },
      },
      restartPolicy: {
        condition: (o.restartCondition ?? 'any') as ServiceSpec['task']['restartPolicy']['condition'],
        delayMs: o.restartDelay ? parseDurationMs('--restart-delay', o.restartDelay) : 5000,
        maxAttempts: o.restartMaxAttempts ? parseInteger('--restart-max-attempts', o.restartMaxAttempts, 0) : 0,
        windowMs: 0,
      },
      placement: {
        constraints: o.constraint,
        preferences,
        maxReplicasPerNode: o.maxReplicasPerNode ? parseInteger('--max-replicas-per-node', o.maxReplicasPerNode, 0) : 0,
      },
      stopGracePeriodMs: o.stopGracePeriod ? parseDurationMs('--stop-grace-period', o.stopGracePeriod) : 10_000,
      stopSignal: o.stopSignal ?? '',
      networks: o.network,
    },
    endpoint: { mode: (o.endpointMode ?? 'vip') as ServiceSpec['endpoint']['mode'], ports: o.publish.map(parsePublish) },
    mode: o.mode === 'global' ? { global: {} } : { replicated: { replicas: o.replicas === undefined ? 1 : parseInteger('--replicas', o.replicas, 0) } },
  };
}

const UNSCHEDULABLE_GRACE_MS = 3000;

/** Watches the service's tasks until all run (then verifies briefly), or until it cannot converge. */
async function waitConverged(connect: Connect, service: ServiceObject, verifyMs = 1000): Promise<void> {
  const printer = new ProgressPrinter();
  const withBars = Boolean(process.stdout.isTTY);
  const stream = connect('control').stream<{ tasks: TaskObject[] }>('WatchTasks', { serviceId: service.id });
  const onInterrupt = () => {
    process.stderr.write(`\nOperation continuing in background.\nUse \`tsswarm service ps ${service.spec.name}\` to check progress.\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  const it = stream[Symbol.asyncIterator]();
  try {
    let converged = false;
    let convergedAt = 0;
    let lastSignature = '';
    let unschedulableSince = 0;
    let last: IteratorResult<{ tasks: TaskObject[] }> | undefined;
    // One outstanding read of the stream at a time: a timer may win a race, but its read stays pending.
    let pendingNext: Promise<IteratorResult<{ tasks: TaskObject[] }>> | undefined;
    for (;;) {
      // Once converged, a quiet verify period ends the wait; a change to the tasks starts it over (a
      // snapshot that changes nothing does not). While tasks cannot be scheduled, the last snapshot is
      // looked at again once a second.
      pendingNext ??= it.next();
      const waitMs = converged ? Math.max(0, verifyMs - (Date.now() - convergedAt)) : unschedulableSince ? 1000 : undefined;
      const next = waitMs !== undefined
        ? await Promise.race([pendingNext, new Promise<'timer'>((r) => setTimeout(() => r('timer'), waitMs))])
        : await pendingNext;
      if (next === 'timer' && converged) break;
      if (next !== 'timer') pendingNext = undefined;
      const current = next === 'timer' ? last! : next;
      last = current;
      if (current.done) throw new UsageError(`lost the watch on service ${service.spec.name}; check it with tsswarm service ps`);
      const signature = current.value.tasks.map((t) => `${t.id}:${t.desiredState}:${t.status.state}:${t.status.health ?? ''}:${t.nodeId}`).join(',');
      const changed = signature !== lastSignature;
      lastSignature = signature;
      const view = progressOf(service, current.value.tasks);
      if (changed) printer.draw(renderProgress(view, withBars));
      if (view.stuck) throw new UsageError(`service ${service.spec.name} could not converge: ${view.stuck}`);
      // Every task not yet running waits for a node that does not exist: say why instead of waiting forever.
      const waiting = view.slots.filter((sl) => sl.state !== 'running');
      if (waiting.length > 0 && waiting.every((sl) => sl.state === 'pending' && sl.error)) {
        unschedulableSince ||= Date.now();
        if (Date.now() - unschedulableSince >= UNSCHEDULABLE_GRACE_MS) {
          throw new UsageError(`service ${service.spec.name} could not converge: ${waiting[0]!.label}: ${waiting[0]!.error}`);
        }
      } else {
        unschedulableSince = 0;
      }
      const nowConverged = view.running === view.total;
      if (nowConverged && !converged) printer.say(`verify: Waiting ${verifyMs / 1000} seconds to verify that tasks are stable...`);
      if (nowConverged && (!converged || changed)) convergedAt = Date.now();
      converged = nowConverged;
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    void it.return?.(undefined);
  }
  printer.say('verify: Service converged');
}

export function serviceCommands(connect: Connect, format: () => OutputFormat): Command[] {
  const service = new Command('service').description('manage swarm services').enablePositionalOptions();

  service.addCommand(addLifecycleOptions(new Command('create').description('create a service'))
    .option('--name <name>', 'service name')
    .option('--replicas <n>', 'number of tasks')
    .addOption(new Option('--mode <mode>', 'replicated or global').choices(['replicated', 'global']).default('replicated'))
    .option('-e, --env <KEY=VALUE>', 'set an environment variable', collect, [])
    .option('--reserve-cpu <cpus>', 'reserve CPUs').option('--reserve-memory <bytes>', 'reserve memory')
    .option('--limit-cpu <cpus>', 'limit CPUs').option('--limit-memory <bytes>', 'limit memory').option('--limit-pids <n>', 'limit processes')
    .option('--constraint <expr>', 'placement constraint (e.g. node.labels.zone==a)', collect, [])
    .option('--placement-pref <pref>', 'placement preference (spread=node.labels.zone)', collect, [])
    .option('--max-replicas-per-node <n>', 'maximum tasks per node')
    .addOption(new Option('--restart-condition <c>', 'none, on-failure or any').choices(['none', 'on-failure', 'any']))
    .option('--restart-delay <duration>', 'delay between restarts').option('--restart-max-attempts <n>', 'maximum restarts')
    .option('--stop-grace-period <duration>', 'time to wait before killing a task').option('--stop-signal <signal>', 'signal to stop a task')
    .option('-w, --workdir <dir>', 'working directory').option('-u, --user <user>', 'user').option('--hostname <name>', 'container hostname')
    .option('--entrypoint <cmd>', 'override the image entrypoint')
    .option('-l, --label <KEY=VALUE>', 'service label', collect, [])
    .option('--mount <spec>', 'bind mount: type=bind,source=/host,target=/path[,readonly]', collect, [])
    .option('--network <name>', 'attach to an overlay network', collect, [])
    .option('-p, --publish <spec>', 'publish a port: PUBLISHED:TARGET or published=P,target=T[,mode=ingress|host][,protocol=udp]', collect, [])
    .addOption(new Option('--endpoint-mode <mode>', 'vip or dnsrr').choices(['vip', 'dnsrr']))
    .option('--no-resolve-image', 'keep the image\'s tag as given instead of pinning the digest the registry has now')
    .option('--with-registry-auth', 'send this manager\'s registry credentials (tsswarm login) to the nodes that run the tasks')
    .option('-d, --detach', 'exit at once instead of waiting for the service to converge')
    .argument('<image>').argument('[command...]')
    .passThroughOptions()
    .action(async (image: string, args: string[], o: CreateFlags & LifecycleFlags) => {
      const created = await connect('control').call<ServiceObject>('CreateService', {
        spec: withLifecycleFlags(specFromFlags(image, args, o), o), noResolveImage: o.resolveImage === false, withRegistryAuth: Boolean(o.withRegistryAuth),
      });
      process.stdout.write(`${created.id}\n`);
      if (!o.detach) await waitConverged(connect, created);
    }));

  service.addCommand(new Command('ls').alias('list').description('list services')
    .option('-q, --quiet', 'only display ids').option('--format <format>', 'table or json')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const { services } = await connect('control').call<{ services: { service: ServiceObject; running: number; desired: number }[] }>('ListServices', {});
      if (o.quiet) { for (const s of services) process.stdout.write(`${s.service.id}\n`); return; }
      if ((o.format ?? format()) === 'json') { printJson(services); return; }
      printTable(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'], services.map(({ service: s, running, desired }) => [
        s.id.slice(0, 12), s.spec.name, 'global' in s.spec.mode && s.spec.mode.global ? 'global' : 'replicated', `${running}/${desired}`,
        shownImage(s.spec.task.image), s.spec.endpoint.ports.map((p) => `*:${p.publishedPort}->${p.targetPort}/${p.protocol}`).join(', '),
      ]));
    }));

  service.addCommand(new Command('ps').description('list the tasks of services')
    .option('--no-trunc', 'do not truncate output').option('-q, --quiet', 'only display task ids')
    .option('-f, --filter <k=v>', 'filter: desired-state=running|shutdown', collect, [])
    .option('--format <format>', 'table or json')
    .argument('<services...>')
    .action(async (refs: string[], o: { trunc: boolean; quiet?: boolean; filter: string[]; format?: string }) => {
      let desiredState = '';
      for (const f of o.filter) {
        const m = /^desired-state=(running|shutdown|accepted)$/.exec(f);
        if (!m) throw new UsageError(`invalid filter "${f}": supported is desired-state=running|shutdown`);
        desiredState = m[1]!;
      }
      const control = connect('control');
      const [{ nodes }, ...lists] = await Promise.all([
        control.call<{ nodes: { id: string; description: { hostname: string } }[] }>('ListNodes', {}),
        ...refs.map((serviceId) => control.call<{ tasks: TaskObject[] }>('ListTasks', { serviceId, desiredState })),
      ]);
      const hostnames = new Map(nodes.map((n) => [n.id, n.description.hostname]));
      const tasks = lists.flatMap((l) => l.tasks);
      if (o.quiet) { for (const t of tasks) process.stdout.write(`${t.id}\n`); return; }
      if ((o.format ?? format()) === 'json') { printJson(tasks); return; }
      // As docker: the newest task of each slot first, older ones below it as \_ history.
      const seen = new Set<string>();
      printTable(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR'], tasks.map((t) => {
        const slotKey = `${t.serviceId}.${t.slot || t.nodeId}`;
        const name = `${seen.has(slotKey) ? ' \\_ ' : ''}${t.serviceName}.${t.slot || t.nodeId}`;
        seen.add(slotKey);
        const error = t.status.error ? `"${o.trunc ? truncate(t.status.error, 40) : t.status.error}"` : '';
        return [
          o.trunc ? t.id.slice(0, 12) : t.id, name, o.trunc ? shownImage(t.spec.image) : t.spec.image, hostnames.get(t.nodeId) ?? '', cap(t.desiredState),
          `${cap(t.status.state)} ${formatAgo(t.status.timestamp)}`, error,
        ];
      }));
    }));

  service.addCommand(new Command('inspect').description('show services as JSON').argument('<services...>')
    .option('--pretty', 'human-readable')
    .action(async (refs: string[], o: { pretty?: boolean }) => {
      const services = await Promise.all(refs.map((id) => connect('control').call<ServiceObject>('GetService', { id })));
      if (!o.pretty) { printJson(services); return; }
      for (const s of services) {
        const mode = 'replicated' in s.spec.mode && s.spec.mode.replicated ? `Replicated\n Replicas:\t${s.spec.mode.replicated.replicas}` : 'Global';
        process.stdout.write(`ID:\t\t${s.id}\nName:\t\t${s.spec.name}\nService Mode:\t${mode}\nImage:\t\t${s.spec.task.image}\n`
          + `Args:\t\t${s.spec.task.args.join(' ')}\nRestart Policy:\t${s.spec.task.restartPolicy.condition}\n`
          + `Constraints:\t${s.spec.task.placement.constraints.join(', ')}\nCreatedAt:\t${s.meta.createdAt}\nUpdatedAt:\t${s.meta.updatedAt}\n`
          + (s.updateStatus?.state ? `UpdateStatus:\n State:\t\t${s.updateStatus.state}\n Started:\t${s.updateStatus.startedAt}\n Message:\t${s.updateStatus.message}\n` : '')
          + '\n');
      }
    }));

  service.addCommand(new Command('scale').description('scale replicated services').argument('<service=replicas...>')
    .option('-d, --detach', 'do not wait for convergence')
    .action(async (pairs: string[], o: { detach?: boolean }) => {
      const control = connect('control');
      for (const pair of pairs) {
        const m = /^([^=]+)=(\d+)$/.exec(pair);
        if (!m) throw new UsageError(`invalid scale specifier "${pair}": expected SERVICE=REPLICAS`);
        const current = await control.call<ServiceObject>('GetService', { id: m[1] });
        if (!('replicated' in current.spec.mode && current.spec.mode.replicated)) throw new UsageError(`scale can only be used with replicated mode: ${m[1]} is global`);
        const spec = { ...current.spec, mode: { replicated: { replicas: Number(m[2]) } } };
        const updated = await control.call<ServiceObject>('UpdateService', { id: current.id, version: current.meta.version, spec });
        process.stdout.write(`${m[1]} scaled to ${m[2]}\n`);
        if (!o.detach) await waitConverged(connect, updated);
      }
    }));

  service.addCommand(new Command('rm').alias('remove').description('remove services').argument('<services...>')
    .action((refs: string[]) => removeEach('service rm', refs, (id) => connect('control').call('RemoveService', { id }))));
  for (const c of serviceUpdateCommands(connect)) service.addCommand(c);
  service.addCommand(serviceLogsCommand(connect));
  return [service];
}
