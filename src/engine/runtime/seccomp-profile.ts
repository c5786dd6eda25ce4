/**
 * Seccomp profiles as data: Docker's format (rules that may apply only with some capabilities, on
 * some architectures or from some kernel on) and the OCI form config.json carries. Shared by the
 * generated default profile and the resolver (seccomp.ts).
 */
export interface SeccompArg { index: number; value: number; valueTwo?: number; op: string }
interface Filter { caps?: string[]; arches?: string[]; minKernel?: string }
export interface DockerSeccompRule {
  names?: string[];
  /** Older profiles name one syscall per rule. */
  name?: string;
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: Filter;
  excludes?: Filter;
}
export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] }[];
  syscalls?: DockerSeccompRule[];
}
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }[];
}
