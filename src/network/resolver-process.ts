/**
 * One network's DNS resolver (native/build/tsswarm-resolver) and the records it serves. The resolver
 * listens on the network's gateway inside the sandbox and is fed over stdin; `sync` answers `ok` once
 * every earlier command is in effect, so apply() returns only when DNS answers match the state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dnsRecordChanges, type DnsRecords } from './dns-records.js';

const SYNC_TIMEOUT_MS = 5_000;

export interface ResolverOptions {
  binary: string;
  netnsPath: string;
  listen: string;
  upstreams: string[];
  /** Says which network, for errors and logs. */
  context: string;
  onExit: (reason: string) => void;
}

export class ResolverProcess {
  private child: ChildProcess | undefined;
  private records: DnsRecords = new Map();
  private pendingSyncs: { resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout }[] = [];
  private stdoutRest = '';
  private stderrTail = '';
  private stopping = false;

  constructor(private readonly options: ResolverOptions) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the process if it is not running (again: after it died, it gets every record anew). */
  private ensureStarted(): ChildProcess {
    if (this.child) return this.child;
    const { binary, netnsPath, listen, upstreams } = this.options;
    const args = ['--netns', netnsPath, '--listen', listen, ...upstreams.flatMap((u) => ['--upstream', u])];
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.records = new Map();
    this.stdoutRest = '';
    this.stderrTail = '';
    child.stdin!.on('error', () => {});
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.onStdout(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderrTail = (this.stderrTail + d).slice(-500); });
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      const reason = `${this.options.context}: resolver ${why}${this.stderrTail.trim() ? `: ${this.stderrTail.trim()}` : ''}`;
      for (const pending of this.pendingSyncs.splice(0)) {
        clearTimeout(pending.timer);
        pending.reject(new Error(reason));
      }
      if (!this.stopping) this.options.onExit(reason);
    };
    child.on('error', (err) => gone(`could not start (${binary}): ${err.message}`));
    child.on('exit', (code, signal) => gone(`exited (${code ?? signal})`));
    return child;
  }

  private onStdout(data: string): void {
    const lines = (this.stdoutRest + data).split('\n');
    this.stdoutRest = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() !== 'ok') continue;
      const pending = this.pendingSyncs.shift();
      if (pending) {
        clearTimeout(pending.timer);
        pending.resolve();
      }
    }
  }

  /** Sends the difference to `desired` and waits until the resolver has applied it. */
  async update(desired: DnsRecords): Promise<void> {
    const child = this.ensureStarted();
    const changes = dnsRecordChanges(this.records, desired);
    if (changes.length === 0) return;
    const synced = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.pendingSyncs.findIndex((p) => p.timer === timer);
        if (index >= 0) this.pendingSyncs.splice(index, 1);
        reject(new Error(`${this.options.context}: resolver did not confirm its records within ${SYNC_TIMEOUT_MS} ms`));
      }, SYNC_TIMEOUT_MS);
      this.pendingSyncs.push({ resolve, reject, timer });
    });
    child.stdin!.write(`${changes.join('\n')}\nsync\n`);
    this.records = new Map(desired);
    await synced;
  }

  /** Closes its stdin (the resolver exits) and waits for it to go. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.stopping = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }
}
