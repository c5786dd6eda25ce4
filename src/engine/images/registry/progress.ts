/**
 * Progress of a pull or push as typed events, in docker's vocabulary, so that the CLI can render
 * docker's per-layer lines (or plain lines when not on a terminal) and the agent can log or drop them.
 * Events carry numbers, never rendered bars.
 */
import type { Digest } from '../digest.js';

export type PullLayerStatus =
  | 'Pulling fs layer'
  | 'Waiting'
  | 'Downloading'
  | 'Retrying'
  | 'Verifying Checksum'
  | 'Download complete'
  | 'Extracting'
  | 'Pull complete'
  | 'Already exists';

export type PullEvent =
  /** "latest: Pulling from library/busybox" */
  | { type: 'resolved'; reference: string; digest: Digest; layers: number }
  /** One layer's line; `id` is the blob digest's first 12 hex digits, as docker shows it. */
  | { type: 'layer'; id: string; digest: Digest; status: PullLayerStatus; current?: number; total?: number; message?: string }
  /** "Digest: sha256:…" then "Status: Downloaded newer image for …" */
  | { type: 'done'; reference: string; digest: Digest; status: string };

export type PushLayerStatus = 'Preparing' | 'Waiting' | 'Pushing' | 'Pushed' | 'Layer already exists' | 'Mounted';

export type PushEvent =
  | { type: 'layer'; id: string; digest: Digest; status: PushLayerStatus; current?: number; total?: number; message?: string }
  /** "1.4: digest: sha256:… size: 1234" */
  | { type: 'done'; reference: string; digest: Digest; size: number };

/** docker's short layer id: the first 12 hex digits of the digest. */
export function layerId(d: Digest): string {
  return d.slice('sha256:'.length, 'sha256:'.length + 12);
}

/** Emits "Downloading"/"Pushing" at most every `step` bytes, and always at the end. */
export function throttled(emit: (current: number) => void, total: number, step = 512 * 1024): (current: number) => void {
  let last = -step;
  return (current) => {
    if (current - last >= step || current === total) {
      last = current;
      emit(current);
    }
  };
}
