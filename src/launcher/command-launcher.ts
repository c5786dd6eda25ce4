/**
 * Runs the node's short-lived commands (tsswarm-shim, the runtime's pause and delete, ip and nft
 * batches) to completion and returns their status and output.
 *
 * Once the daemon has started native/build/tsswarm-launcher (startCommandLauncher, early, while the
 * daemon is small), the commands are forked by that small process: a fork from the daemon copies
 * the page tables of 100+ MB and costs several ms more per command. Before that, or if the launcher
 * is gone, they are spawned from this process as usual.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

export interface Completed {
  /** null when a signal ended it */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** The launcher process and the commands it is running for us, by request id. */
class Launcher {
  private readonly pending = new Map<number, { resolve: (c: Completed) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private received: Buffer = Buffer.alloc(0);
  dead = false;

  constructor(private readonly child: ChildProcess, private readonly onGone: (why: string) => void) {
    child.stdout!.on('data', (chunk: Buffer) => this.receive(chunk));
    child.on('exit', (code, signal) => this.gone(`tsswarm-launcher exited (${signal ?? `code ${code}`})`));
    child.on('error', (err) => this.gone(`tsswarm-launcher: ${err.message}`));
    child.stdin!.on('error', () => { /* the exit handler says why */ });
  }

  run(file: string, args: string[], input: string, timeoutMs: number): Promise<Completed> {
    const id = this.nextId++;
    const strings = [file, ...args].map((s) => Buffer.from(`${s}\0`));
    const stdin = Buffer.from(input);
    const head = Buffer.alloc(20);
    const rest = 16 + strings.reduce((n, b) => n + b.length, 0) + stdin.length;
    head.writeUInt32LE(rest, 0);
    head.writeUInt32LE(id, 4);
    head.writeUInt32LE(strings.length, 8);
    head.writeUInt32LE(stdin.length, 12);
    head.writeUInt32LE(timeoutMs, 16);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(Buffer.concat([head, ...strings, stdin]));
    });
  }

  close(): void {
    this.dead = true;
    this.child.stdin!.end();
  }

  private receive(chunk: Buffer): void {
    this.received = this.received.length ? Buffer.concat([this.received, chunk]) : chunk;
    let off = 0;
    while (this.received.length - off >= 4) {
      const len = this.received.readUInt32LE(off);
      if (this.received.length - off - 4 < len) break;
      const id = this.received.readUInt32LE(off + 4);
      const code = this.received.readInt32LE(off + 8);
      const signal = this.received.readInt32LE(off + 12);
      const outLen = this.received.readUInt32LE(off + 16);
      const errLen = this.received.readUInt32LE(off + 20);
      const outStart = off + 24;
      const done = this.pending.get(id);
      this.pending.delete(id);
      done?.resolve({
        code: code < 0 ? null : code,
        signal: signal ? SIGNAL_NAMES.get(signal) ?? 'SIGKILL' : null,
        stdout: this.received.toString('utf8', outStart, outStart + outLen),
        stderr: this.received.toString('utf8', outStart + outLen, outStart + outLen + errLen),
      });
      off += 4 + len;
    }
    this.received = this.received.subarray(off);
  }

  private gone(why: string): void {
    if (this.dead && this.pending.size === 0) return;
    this.dead = true;
    for (const { reject } of this.pending.values()) reject(new Error(`${why} while running a command`));
    this.pending.clear();
    this.onGone(why);
  }
}

let launcher: Launcher | undefined;

/** Starts the launcher at `binary`; `onGone` hears if it ever dies (commands are then spawned here). */
export function startCommandLauncher(binary: string, onGone: (why: string) => void): void {
  const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  launcher = new Launcher(child, onGone);
}

export function stopCommandLauncher(): void {
  launcher?.close();
  launcher = undefined;
}

/**
 * Runs `file args` (PATH lookup without a '/') with `input` on stdin, and collects its output. With
 * `timeoutMs`, a command still running then is killed (SIGKILL), as a health check's timeout does.
 */
export function runCommand(file: string, args: string[], input = '', timeoutMs = 0): Promise<Completed> {
  if (launcher && !launcher.dead) return launcher.run(file, args, input, timeoutMs);
  return spawnHere(file, args, input, timeoutMs);
}

function spawnHere(file: string, args: string[], input: string, timeoutMs: number): Promise<Completed> {
  return new Promise((resolve) => {
    // A process group of its own, as the launcher gives it, so that a timeout kills what it forked.
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const timer = timeoutMs ? setTimeout(() => {
      killed = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone already */ }
    }, timeoutMs) : undefined;
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Killed at its timeout: answer now; a descendant that escaped may hold the pipes.
      if (!killed) return;
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code, signal, stdout, stderr });
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    // A command that fails early closes its stdin; the exit status tells the story, not EPIPE.
    child.stdin.on('error', () => {});
    // As the launcher reports a command it cannot start: exit 127 and the reason.
    child.on('error', (err) => resolve({ code: 127, signal: null, stdout: '', stderr: `cannot run ${file}: ${err.message}\n` }));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(input);
  });
}
