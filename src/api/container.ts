/** A container as the user asked for it (`container run` flags), after validation. */
export interface ContainerSpec {
  name: string;
  image: string;
  cmd: string[];
  entrypoint: string[];
  entrypointSet: boolean;
  env: string[];
  workingDir: string;
  user: string;
  hostname: string;
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  restart: RestartPolicy;
  mounts: BindMount[];
  /** none, host, bridge, or the name of an attachable swarm network. */
  network: string;
  /** `-p HOST:CONTAINER[/udp]`: published on the daemon's addresses (bridge network only). */
  ports: PortMapping[];
  /**
   * A network namespace prepared for the container (an overlay attachment): it joins it instead of
   * `network`, and gets the name service files made for it.
   */
  sandbox?: {
    netnsPath: string; resolvConf: string; hosts: string; ip?: string;
    /** On a swarm network: the attachment the managers made for the container (its address's holder). */
    attachment?: { taskId: string; networkId: string; networkName: string };
  };
  autoRemove: boolean;
  readOnly: boolean;
  /**
   * `--security-opt`, as docker takes them: `seccomp=unconfined`, `seccomp=<profile JSON>` (the CLI
   * reads the file), `no-new-privileges[=true|false]`. Empty: Docker's default seccomp profile.
   */
  securityOpt: string[];
  stopSignal: string;
  stopTimeout: number;
  labels: Record<string, string>;
}

export interface PortMapping {
  protocol: 'tcp' | 'udp';
  hostPort: number;
  containerPort: number;
}

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  maxRetries: number;
}

export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead';

export interface ContainerState {
  status: ContainerStatus;
  pid: number;
  exitCode: number;
  oomKilled: boolean;
  error: string;
  startedAt: string;
  finishedAt: string;
  restartCount: number;
}

/** What the daemon keeps on disk for each container (<data-dir>/containers/<id>/container.json). */
export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageId: string;
  spec: ContainerSpec;
  state: ContainerState;
  created: string;
  bundle: string;
  logPath: string;
  command: string[];
  /** Set by stop/kill from the user: a restart policy must not bring the container back. */
  stoppedByUser: boolean;
}

/** What the shim records when the container's init process ends (exit.json). */
export interface ExitRecord {
  exitCode: number;
  signal: number | null;
  oomKilled: boolean;
  startedAt?: string;
  finishedAt: string;
  error?: string;
}

export class ContainerError extends Error {
  constructor(message: string, readonly code: 'not-found' | 'conflict' | 'invalid' | 'runtime' = 'runtime') {
    super(message);
    this.name = 'ContainerError';
  }
}
