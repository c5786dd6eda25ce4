/**
 * Runs the kernel's configuration tools (ip, bridge, nft, ...) with a batch on stdin. One process per
 * batch, never per command: a spawn costs more than the kernel's work. Failures carry what was being
 * done, the command line, the failing batch line and the tool's stderr.
 */
import { runCommand } from '../launcher/command-launcher.js';

export class NetworkCommandError extends Error {
  constructor(message: string, readonly stderr: string) {
    super(message);
    this.name = 'NetworkCommandError';
  }
}

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

/** Runs `file args` with `input` on stdin; rejects with `context` and the reason unless it exits 0. */
export async function runTool(context: string, file: string, args: string[], input = ''): Promise<CommandOutput> {
  const { code, signal, stdout, stderr } = await runCommand(file, args, input);
  if (code === 0) return { stdout, stderr };
  const why = code === null ? `killed by ${signal}` : `exit ${code}`;
  throw new NetworkCommandError(`${context}: ${[file, ...args].join(' ')} failed (${why}): ${describeFailure(stderr, input)}`, stderr);
}

/** iproute2 and nft name the failing line of a batch ("Command failed -:3", "/dev/stdin:3:..."): quote it. */
function describeFailure(stderr: string, input: string): string {
  const text = stderr.trim().replace(/\s*\n\s*/g, ' | ') || 'no message';
  const at = /Command failed -:(\d+)/.exec(stderr) ?? /\/dev\/stdin:(\d+):/.exec(stderr);
  if (!at) return text;
  const line = input.split('\n')[Number(at[1]) - 1];
  return line === undefined ? text : `${text} (batch line ${at[1]}: "${line.trim()}")`;
}

/** `ip -batch -` in the caller's namespace, or in `netns` (by name). */
export function ipBatch(context: string, lines: string[], netns?: string): Promise<CommandOutput> {
  const args = netns ? ['-n', netns, '-batch', '-'] : ['-batch', '-'];
  return runTool(context, 'ip', args, joinLines(lines));
}

export function bridgeBatch(context: string, lines: string[], netns: string): Promise<CommandOutput> {
  return runTool(context, 'bridge', ['-n', netns, '-batch', '-'], joinLines(lines));
}

/** `nft -f -` in the caller's namespace or, through nsenter, in the namespace at `netnsPath`. */
export function nftApply(context: string, ruleset: string, netnsPath?: string): Promise<CommandOutput> {
  if (!netnsPath) return runTool(context, 'nft', ['-f', '-'], ruleset);
  return runTool(context, 'nsenter', [`--net=${netnsPath}`, 'nft', '-f', '-'], ruleset);
}

/** Sets sysctls (k=v) inside a namespace; keys the kernel lacks (br_netfilter not loaded) are skipped. */
export function sysctlIn(context: string, netnsPath: string, settings: string[]): Promise<CommandOutput> {
  return runTool(context, 'nsenter', [`--net=${netnsPath}`, 'sysctl', '-q', '-e', '-w', ...settings]);
}

function joinLines(lines: string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
