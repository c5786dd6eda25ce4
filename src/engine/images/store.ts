/**
 * The image store of one daemon, in <data-dir>/images:
 *
 *   blobs/sha256/<hex>   manifests, configs and layer blobs as they came, verified
 *   layers/<hex>/        each distinct layer unpacked once (by diff_id), overlayfs lower dirs
 *   images.json          the index: images, tags, layer sizes — the commit point of every change
 *   tmp/                 work in progress; emptied on open
 *
 * Changes are serialised (one import, load, remove or commit at a time) so that a sweep of unreferenced
 * content never races an import that has put content in place but not yet committed it. A pull is the
 * exception, being long and network-bound: it downloads and unpacks outside the lock, under a lease
 * (leases.ts) that pins what it found or put in place, and takes the lock only to plan and to commit.
 * Reads (list, resolve, lowerDirs) answer from memory and never wait.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { BlobStore } from './blob-store.js';
import { forEachConcurrently } from './concurrency.js';
import { defaultRepoName, type ImageCandidate } from './candidate.js';
import { isDigest, shortDigest, type Digest } from './digest.js';
import { readDockerArchive, isDockerArchive } from './docker-archive.js';
import { ImageError } from './errors.js';
import { DEFAULT_PATH, toConfigDoc, toImageConfig, type ImageConfig } from './image-config.js';
import { LayerStore } from './layer-store.js';
import { Leases, type Lease } from './leases.js';
import { loadState, referencedContent, saveState, type ImageRecord, type StoredImage, type StoreState } from './metadata.js';
import { isOciLayout, readOciLayout } from './oci-layout.js';
import { normalizeRef, tryParseReference } from './reference.js';
import { saveImages, type SaveFormat } from './save.js';
import { ArchiveSource, DirectorySource, type ImageSource } from './source.js';
import { pullImage, type PulledImage, type PullOptions, type PullTarget } from './registry/pull.js';
import { pushImage, type PushOptions, type PushResult } from './registry/push.js';
import { localName, parseRemoteReference } from './registry/remote-reference.js';

export type { ImageRecord } from './metadata.js';

const SHORT_ID_MIN = 12;
const UNPACK_CONCURRENCY = 3;

export interface PullResult {
  image: ImageRecord;
  /** docker's full reference: "docker.io/library/busybox:latest" */
  reference: string;
  /** What the reference resolved to at the registry (the index's digest for a multi-platform image). */
  digest: Digest;
  /** docker's last line: "Downloaded newer image for …" or "Image is up to date for …" */
  status: string;
}

export interface ImageHistoryEntry {
  created: string;
  createdBy: string;
  comment: string;
  size: number;
  emptyLayer: boolean;
}

export interface RemoveOptions {
  force?: boolean;
  /** Whether a container (running or not) uses the image with this id. */
  inUse?: (id: string) => boolean;
}

export class ImageStore {
  private state: StoreState;
  private readonly blobs: BlobStore;
  private readonly layers: LayerStore;
  private readonly tmpDir: string;
  private readonly indexPath: string;
  private queue: Promise<unknown> = Promise.resolve();
  private tmpSeq = 0;
  private readonly leases: Leases;

  private constructor(readonly root: string, state: StoreState, private readonly log?: Logger) {
    this.state = state;
    this.tmpDir = join(root, 'tmp');
    this.indexPath = join(root, 'images.json');
    const tmp = (): string => join(this.tmpDir, `${process.pid}-${Date.now().toString(36)}-${this.tmpSeq++}`);
    this.blobs = new BlobStore(root, tmp);
    this.layers = new LayerStore(root, tmp, log);
    this.leases = new Leases(this.tmpDir);
  }

  /** Opens (creating if needed) the store at `root`, clearing what interrupted imports left behind. */
  static async open(root: string, log?: Logger): Promise<ImageStore> {
    // Private to root: layers hold setuid binaries and device nodes that no host user should reach.
    await mkdir(root, { recursive: true, mode: 0o700 });
    const state = await loadState(join(root, 'images.json'));
    const store = new ImageStore(root, state, log);
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir, { recursive: true });
    await store.blobs.init();
    await store.layers.init();
    await store.sweep();
    for (const img of state.images) {
      for (const l of img.layers) {
        if (!(await store.layers.has(l as Digest))) log?.warn({ image: img.id, layer: l }, 'image store: layer directory missing');
      }
    }
    log?.info({ root, images: state.images.length }, 'image store open');
    return store;
  }

  list(): ImageRecord[] {
    return this.state.images.map(publicRecord);
  }

  /** By tag ("busybox", "busybox:latest"), then by full or short id (>= 12 hex, with or without "sha256:"). */
  resolve(refOrId: string): ImageRecord | undefined {
    const img = this.find(refOrId);
    return img && publicRecord(img);
  }

  private find(refOrId: string): StoredImage | undefined {
    if (refOrId.includes('@')) return this.findByRepoDigest(refOrId);
    const ref = tryParseReference(refOrId);
    if (typeof ref !== 'string') {
      const tag = `${ref.name}:${ref.tag}`;
      const tagged = this.state.images.find((i) => i.refs.includes(tag));
      if (tagged) return tagged;
    }
    const hex = refOrId.startsWith('sha256:') ? refOrId.slice('sha256:'.length) : refOrId;
    if (hex.length < SHORT_ID_MIN || hex.length > 64 || !/^[0-9a-f]+$/.test(hex)) return undefined;
    const matches = this.state.images.filter((i) => i.id.startsWith(`sha256:${hex}`));
    if (matches.length > 1) throw new ImageError(`image id prefix ${hex} is ambiguous (${matches.length} images)`);
    return matches[0];
  }

  /** "name[:tag]@sha256:…": the image pulled under that digest from that repository. */
  private findByRepoDigest(input: string): StoredImage | undefined {
    const ref = parseRemoteReference(input);
    const key = `${localName(ref.registry, ref.repository)}@${ref.digest}`;
    return this.state.images.find((i) => i.repoDigests?.includes(key));
  }

  /** overlayfs lowerdir= entries for the image, top layer first. */
  lowerDirs(image: ImageRecord): string[] {
    const dirs: string[] = [];
    // A layer that occurs twice needs to be there only once, at its top-most place: the lower copy's
    // files are all covered by the upper copy's identical ones. overlayfs refuses duplicate lowers.
    for (const l of [...image.layers].reverse()) {
      if (!isDigest(l)) throw new ImageError(`image ${shortDigest(image.id)}: bad layer id ${l}`);
      const dir = this.layers.path(l);
      if (!dirs.includes(dir)) dirs.push(dir);
    }
    return dirs;
  }

  /** Imports a plain rootfs tarball (optionally compressed) as a one-layer image tagged `ref`. */
  importRootfs(tarPath: string, ref: string, opts: { config?: Partial<ImageConfig> } = {}): Promise<ImageRecord> {
    return this.serial(async () => {
      const tag = normalizeRef(ref);
      await checkReadableFile(tarPath);
      const blob = await this.blobs.ingestFile(tarPath, `rootfs ${tarPath}`);
      let diffId: Digest;
      let size: number;
      try {
        ({ diffId, size } = await this.layers.unpack(this.blobs.path(blob.digest), tarPath, { verifiedBlobDigest: blob.digest }));
      } catch (err) {
        await this.sweep();
        throw err;
      }
      const config: ImageConfig = {
        env: [DEFAULT_PATH], entrypoint: null, cmd: null, workingDir: '', user: '', exposedPorts: [], labels: {},
        ...opts.config,
      };
      // A rootfs has no config to say where its programs are: keep the default PATH unless given one.
      if (!config.env.some((e) => e.startsWith('PATH='))) config.env = [DEFAULT_PATH, ...config.env];
      const created = new Date().toISOString();
      const configBlob = await this.blobs.put(JSON.stringify(toConfigDoc(config, [diffId], created)));
      const image: StoredImage = { id: configBlob, refs: [tag], layers: [diffId], config, created, size, blobs: [configBlob, blob.digest] };
      await this.commit(image, new Map([[diffId, size]]));
      this.log?.info({ image: image.id, ref: tag, bytes: size }, 'rootfs imported');
      return publicRecord(image);
    });
  }

  /**
   * Loads every image of an OCI image layout (directory or tar) or a docker-save archive. OCI layouts
   * name only a tag ("latest"); the repository then is `opts.name`, else the file's base name.
   */
  load(path: string, opts: { name?: string } = {}): Promise<ImageRecord[]> {
    return this.serial(async () => {
      const info = await stat(path).catch(() => undefined);
      if (!info) throw new ImageError(`${path}: no such file or directory`);
      const source: ImageSource = info.isDirectory()
        ? await DirectorySource.open(path)
        : await ArchiveSource.open(path, join(this.tmpDir, `load-${process.pid}-${this.tmpSeq++}`));
      try {
        let candidates: ImageCandidate[];
        if (await isDockerArchive(source)) candidates = await readDockerArchive(source);
        else if (await isOciLayout(source)) {
          const name = opts.name !== undefined ? normalizeRef(opts.name).replace(/:[^:/]*$/, '') : defaultRepoName(path);
          candidates = await readOciLayout(source, name);
        } else throw new ImageError(`${path}: unknown image format (neither an OCI layout with index.json nor a docker-save archive with manifest.json)`);
        const loaded: ImageRecord[] = [];
        try {
          for (const c of candidates) loaded.push(await this.ingest(source, c));
        } catch (err) {
          await this.sweep();
          throw err;
        }
        return loaded;
      } finally {
        await source.close();
      }
    });
  }

  /**
   * Like `docker pull`: fetches the image's missing layers from its registry (see registry/pull.ts),
   * then tags it and records the digest it was pulled by. A failed pull leaves no partial content:
   * whatever was not verified stays in tmp/ and is removed; verified layers stay for the next try
   * until the next sweep.
   *
   * Only the commit takes the store's lock: pulls of other images, and removals, go on meanwhile.
   */
  async pull(ref: string, opts: PullOptions): Promise<PullResult> {
    const lease = await this.leases.take();
    try {
      const pulled = await pullImage(this.pullTarget(lease), ref, opts);
      const { image, upToDate } = await this.serial(() => this.commitPulled(pulled));
      const shown = pulled.ref.localTag ?? pulled.ref.full;
      const status = upToDate ? `Image is up to date for ${shown}` : `Downloaded newer image for ${shown}`;
      opts.onProgress?.({ type: 'done', reference: pulled.ref.full, digest: pulled.digest, status });
      this.log?.info({ image: image.id, ref: pulled.ref.full, digest: pulled.digest }, 'image pulled');
      return { image: publicRecord(image), reference: pulled.ref.full, digest: pulled.digest, status };
    } finally {
      await lease.release();
    }
  }

  /**
   * Like `docker push`: `ref` must be a tag of a local image ("host:5000/shop/web:1.4"); see
   * registry/push.ts. Resolves with the manifest's digest as the registry stores it.
   */
  push(ref: string, opts: PushOptions): Promise<PushResult> {
    return this.serial(async () => {
      const img = this.find(ref);
      if (!img) throw new ImageError(`An image does not exist locally with the tag: ${ref}`);
      const target = parseRemoteReference(ref);
      // Repositories of the same registry that images here came from: the registry may mount their blobs.
      const mountCandidates = [...new Set(this.state.images.flatMap((i) => [...i.refs, ...(i.repoDigests ?? [])]).flatMap((r) => {
        const p = parseRemoteReference(r);
        return p.registry === target.registry ? [p.repository] : [];
      }))];
      const result = await pushImage({ image: { id: img.id as Digest, layers: img.layers as Digest[], blobs: img.blobs as Digest[] }, blobs: this.blobs, mountCandidates }, ref, opts);
      // As docker: the image now knows the digest it has in that repository (`image inspect` RepoDigests).
      const repoDigest = `${localName(target.registry, target.repository)}@${result.digest}`;
      const images = this.state.images.map((i) => (i.id !== img.id ? i : {
        ...i, repoDigests: [...(i.repoDigests ?? []).filter((d) => !d.startsWith(`${repoDigest.split('@')[0]}@`)), repoDigest],
      }));
      await this.setState({ ...this.state, images });
      this.log?.info({ image: img.id, ref: result.reference, digest: result.digest }, 'image pushed');
      return result;
    });
  }

  /** Like `docker tag`: `target` ("name[:tag]") now names the image `source` names; another image loses it. */
  tag(source: string, target: string): Promise<ImageRecord> {
    return this.serial(async () => {
      const img = this.find(source);
      if (!img) throw new ImageError(`No such image: ${source}`);
      const tag = normalizeRef(target);
      if (img.refs.includes(tag)) return publicRecord(img);
      const images = this.state.images.map((i) => (i.id === img.id ? { ...i, refs: [...i.refs, tag] } : { ...i, refs: i.refs.filter((r) => r !== tag) }));
      await this.setState({ ...this.state, images });
      return publicRecord(images.find((i) => i.id === img.id)!);
    });
  }

  /**
   * Like `docker rmi`: a tag removes that tag, and the image too once no tag is left; an id removes
   * the image with all its tags (with `force` when it has several). Layers and blobs no other image
   * shares are deleted.
   *
   * An image a container uses is refused unless `force`; with `force` it loses its tags but stays
   * (untagged, like docker does for a running container's image), because its layers are the lower
   * dirs of that container's mount. Remove it by id once no container uses it.
   */
  remove(refOrId: string, opts: RemoveOptions = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    return this.serial(async () => {
      const img = this.find(refOrId);
      if (!img) throw new ImageError(`no such image: ${refOrId}`);
      const parsed = tryParseReference(refOrId);
      const tag = typeof parsed === 'string' ? undefined : `${parsed.name}:${parsed.tag}`;
      const inUse = opts.inUse?.(img.id) ?? false;
      let untagged: string[];
      if (tag !== undefined && img.refs.includes(tag)) {
        untagged = [tag];
        if (img.refs.length === 1 && inUse && !opts.force) {
          throw new ImageError(`image ${tag} (${shortDigest(img.id)}) is in use by a container; remove the container first or force`);
        }
      } else {
        if (inUse && !opts.force) throw new ImageError(`image ${shortDigest(img.id)} is in use by a container; remove the container first or force`);
        if (img.refs.length > 1 && !opts.force) {
          throw new ImageError(`image ${shortDigest(img.id)} has ${img.refs.length} tags (${img.refs.join(', ')}); remove them by tag or force`);
        }
        untagged = [...img.refs];
      }
      const refs = img.refs.filter((r) => !untagged.includes(r));
      const keep = refs.length > 0 || inUse;
      const deleted: string[] = keep ? [] : [img.id];
      const images = this.state.images.flatMap((i) => (i !== img ? [i] : keep ? [{ ...i, refs }] : []));
      const before = new Set(this.state.images.flatMap((i) => i.layers));
      await this.setState({ ...this.state, images });
      const after = new Set(images.flatMap((i) => i.layers));
      for (const l of before) if (!after.has(l)) deleted.push(l);
      await this.sweep();
      this.log?.info({ image: img.id, untagged, deleted }, 'image removed');
      return { untagged, deleted };
    });
  }

  /**
   * Like `docker save -o FILE`: the images `refs` name, in one tar (save.ts). A ref that is a tag
   * records that tag; an id records all of the image's tags. Serialised with the changes, so that no
   * sweep removes a blob while it is being linked.
   */
  save(refs: string[], out: string, format: SaveFormat): Promise<void> {
    return this.serial(async () => {
      const picked = new Map<StoredImage, Set<string>>();
      for (const ref of refs) {
        const img = this.find(ref);
        if (!img) throw new ImageError(`No such image: ${ref}`);
        const parsed = tryParseReference(ref);
        const tag = typeof parsed === 'string' ? undefined : `${parsed.name}:${parsed.tag}`;
        const tags = picked.get(img) ?? new Set<string>();
        for (const t of tag !== undefined && img.refs.includes(tag) ? [tag] : img.refs) tags.add(t);
        picked.set(img, tags);
      }
      const scratch = join(this.tmpDir, `save-${process.pid}-${Date.now().toString(36)}-${this.tmpSeq++}`);
      await saveImages({ images: [...picked].map(([image, tags]) => ({ image, tags: [...tags] })), blobs: this.blobs, scratch, out, format });
      this.log?.info({ images: picked.size, out, format }, 'images saved');
    });
  }

  /** Like `docker image prune`: removes untagged images, or with `all` every image no container uses. */
  prune(opts: { all?: boolean; inUse?: (id: string) => boolean } = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    return this.serial(async () => {
      const gone = this.state.images.filter((i) => !(opts.inUse?.(i.id) ?? false) && (opts.all || i.refs.length === 0));
      if (gone.length === 0) return { untagged: [], deleted: [] };
      const images = this.state.images.filter((i) => !gone.includes(i));
      const kept = new Set(images.flatMap((i) => i.layers));
      await this.setState({ ...this.state, images });
      await this.sweep();
      const deleted = [...gone.map((i) => i.id), ...new Set(gone.flatMap((i) => i.layers).filter((l) => !kept.has(l)))];
      this.log?.info({ images: gone.length }, 'images pruned');
      return { untagged: gone.flatMap((i) => i.refs), deleted };
    });
  }

  /** Like `docker image history`: the config's history, newest first, each step with the size of the layer it made. */
  async history(refOrId: string): Promise<ImageHistoryEntry[]> {
    const img = this.find(refOrId);
    if (!img) throw new ImageError(`No such image: ${refOrId}`);
    const doc = JSON.parse((await this.blobs.read(img.id as Digest)).toString('utf8')) as {
      history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
    };
    let layer = 0;
    return (doc.history ?? []).map((h) => ({
      created: h.created ?? '', createdBy: h.created_by ?? '', comment: h.comment ?? '', emptyLayer: h.empty_layer === true,
      size: h.empty_layer ? 0 : this.state.layers[img.layers[layer++] as Digest]?.size ?? 0,
    })).reverse();
  }

  // --- internals ---

  /** The store as a pull sees it: its temp files in the lease's dir, what it relies on pinned. */
  private pullTarget(lease: Lease): PullTarget {
    return {
      blobs: new BlobStore(this.root, lease.tmp),
      layers: new LayerStore(this.root, lease.tmp, this.log),
      tmp: lease.tmp,
      // Under the lock, so that no sweep is half-way through deleting what we find present.
      reserve: (want) => this.serial(async () => {
        for (const d of [...want.blobs, ...want.layers]) lease.pin(d);
        const blobs = new Set<Digest>();
        for (const b of want.blobs) if (await this.blobs.has(b)) blobs.add(b);
        const layers = new Map<Digest, number>();
        for (const l of want.layers) {
          const known = this.state.layers[l]?.size;
          if (known !== undefined && (await this.layers.has(l))) layers.set(l, known);
        }
        return { blobs, layers };
      }),
    };
  }

  private async commitPulled(pulled: PulledImage): Promise<{ image: StoredImage; upToDate: boolean }> {
    const blobs = new Set<string>([await this.blobs.put(pulled.config.bytes)]);
    for (const d of pulled.documents) blobs.add(await this.blobs.put(d));
    for (const l of pulled.layers) if (await this.blobs.has(l.blob)) blobs.add(l.blob);
    const existing = this.state.images.find((i) => i.id === pulled.config.digest);
    const tag = pulled.ref.localTag;
    const repoDigest = `${localName(pulled.ref.registry, pulled.ref.repository)}@${pulled.digest}`;
    const image: StoredImage = {
      id: pulled.config.digest,
      refs: [...new Set([...(existing?.refs ?? []), ...(tag !== undefined ? [tag] : [])])],
      layers: pulled.layers.map((l) => l.diffId),
      config: toImageConfig(pulled.config.doc),
      created: pulled.config.doc.created ?? existing?.created ?? new Date().toISOString(),
      size: pulled.layers.reduce((sum, l) => sum + l.size, 0),
      blobs: [...new Set([...(existing?.blobs ?? []), ...blobs])],
      repoDigests: [...new Set([...(existing?.repoDigests ?? []).filter((d) => !d.startsWith(`${repoDigest.split('@')[0]}@`)), repoDigest])],
    };
    const upToDate = !pulled.fetched && existing !== undefined && (tag === undefined || existing.refs.includes(tag));
    await this.commit(image, new Map(pulled.layers.map((l) => [l.diffId, l.size])));
    return { image, upToDate };
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Puts a candidate's blobs and layers in place, then commits the image. Blobs are taken in one by
   * one (disk bound); the layers not yet unpacked are unpacked a few at a time, since each keeps one
   * core busy hashing and parsing and another in GNU tar.
   */
  private async ingest(source: ImageSource, c: ImageCandidate): Promise<ImageRecord> {
    const blobs = new Set<string>([await this.blobs.put(c.config.bytes)]);
    for (const d of c.documents) blobs.add(await this.blobs.put(d));
    const toUnpack = new Map<Digest, Digest>(); // diff_id → blob
    const layerSizes = new Map<Digest, number>();
    for (const layer of c.layers) {
      const what = `layer ${shortDigest(layer.blobDigest ?? layer.diffId)}`;
      const blob = await source.ingest(layer.rel, this.blobs, what, layer.blobDigest);
      blobs.add(blob);
      const known = this.state.layers[layer.diffId]?.size;
      if (known !== undefined && (await this.layers.has(layer.diffId))) layerSizes.set(layer.diffId, known);
      else toUnpack.set(layer.diffId, blob);
    }
    await forEachConcurrently([...toUnpack], UNPACK_CONCURRENCY, async ([diffId, blob]) => {
      const r = await this.layers.unpack(this.blobs.path(blob), `layer ${shortDigest(diffId)}`, { diffId, verifiedBlobDigest: blob });
      layerSizes.set(diffId, r.size);
    });
    const size = c.layers.reduce((sum, l) => sum + (layerSizes.get(l.diffId) ?? 0), 0);
    const existing = this.state.images.find((i) => i.id === c.config.digest);
    const created = c.config.doc.created ?? existing?.created ?? new Date().toISOString();
    const image: StoredImage = {
      id: c.config.digest,
      refs: [...new Set([...(existing?.refs ?? []), ...c.refs])],
      layers: c.layers.map((l) => l.diffId),
      config: toImageConfig(c.config.doc),
      created,
      size,
      blobs: [...new Set([...(existing?.blobs ?? []), ...blobs])],
    };
    await this.commit(image, layerSizes);
    this.log?.info({ image: image.id, refs: image.refs, layers: image.layers.length, bytes: size }, 'image loaded');
    return publicRecord(image);
  }

  /**
   * Adds or replaces an image and moves its tags away from any other image (which keeps existing,
   * untagged, as docker does), then makes everything durable and writes the index.
   */
  private async commit(image: StoredImage, layerSizes: Map<Digest, number>): Promise<void> {
    const images = this.state.images
      .filter((i) => i.id !== image.id)
      .map((i) => ({ ...i, refs: i.refs.filter((r) => !image.refs.includes(r)) }));
    images.push(image);
    const layers = { ...this.state.layers };
    for (const [d, size] of layerSizes) layers[d] = { size };
    await syncFilesystem(this.root);
    await this.setState({ ...this.state, images, layers });
  }

  private async setState(next: StoreState): Promise<void> {
    const { layers } = referencedContent(next);
    next.layers = Object.fromEntries(Object.entries(next.layers).filter(([d]) => layers.has(d as Digest)));
    await saveState(this.indexPath, next);
    this.state = next;
  }

  /**
   * Deletes layers and blobs that no image refers to (mark and sweep), and stray temp files; not what
   * a pull in progress has pinned, nor its temp dir.
   */
  private async sweep(): Promise<void> {
    const { layers, blobs } = referencedContent(this.state);
    const keep = (d: Digest, referenced: Set<Digest>): boolean => referenced.has(d) || this.leases.isPinned(d);
    const onDisk = await this.layers.list();
    for (const l of onDisk.layers) if (!keep(l, layers)) await this.layers.remove(l);
    for (const s of onDisk.stray) await rm(s, { recursive: true, force: true });
    for (const b of await this.blobs.list()) if (!keep(b, blobs)) await this.blobs.remove(b);
    for (const s of await this.blobs.listStray()) await rm(s, { recursive: true, force: true });
    for (const t of await readdir(this.tmpDir)) {
      if (!this.leases.isLeased(t)) await rm(join(this.tmpDir, t), { recursive: true, force: true });
    }
  }
}

function publicRecord(i: StoredImage): ImageRecord {
  return {
    id: i.id,
    refs: [...i.refs],
    layers: [...i.layers],
    config: structuredClone(i.config),
    created: i.created,
    size: i.size,
    repoDigests: [...(i.repoDigests ?? [])],
  };
}

async function checkReadableFile(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new ImageError(`${path}: no such file`);
  if (!info.isFile()) throw new ImageError(`${path}: not a regular file`);
}

/**
 * Flushes the store's file system (syncfs via `sync -f`) before the index names new content: fsyncing
 * each of a layer's thousands of files would cost far more than one syncfs per import.
 */
async function syncFilesystem(path: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const p = spawn('sync', ['-f', path], { stdio: 'ignore' });
    p.on('error', () => resolve());
    p.on('close', () => resolve());
  });
}

