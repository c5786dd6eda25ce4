/**
 * `docker save` archives (and skopeo's docker-archive:): manifest.json lists, per image, its config
 * file, its tags (RepoTags) and its layer tarballs, which the manifest does not give digests for: each
 * layer is checked against the config's diff_ids as it is unpacked instead.
 */
import { isDigest, sha256Of, shortDigest, type Digest } from './digest.js';
import { ImageError } from './errors.js';
import { DockerArchiveManifestSchema, ImageConfigDocSchema, parseJson } from './image-config.js';
import { checkLayerCount, type ImageCandidate } from './candidate.js';
import { normalizeRef } from './reference.js';
import { checkDocument, type ImageSource } from './source.js';

export async function isDockerArchive(src: ImageSource): Promise<boolean> {
  return src.exists('manifest.json');
}

/** "blobs/sha256/<hex>" or "<hex>.json" name their content's digest; legacy "<id>/layer.tar" do not. */
function digestInName(rel: string): Digest | undefined {
  const m = /(?:^|\/)(?:sha256[:/])?([0-9a-f]{64})(?:\.json|\.tar)?$/.exec(rel);
  const d = m ? `sha256:${m[1]}` : undefined;
  return isDigest(d) ? d : undefined;
}

export async function readDockerArchive(src: ImageSource): Promise<ImageCandidate[]> {
  const entries = parseJson((await src.read('manifest.json')).toString('utf8'), DockerArchiveManifestSchema, `${src.label}: manifest.json`);
  if (entries.length === 0) throw new ImageError(`${src.label}: manifest.json lists no images`);
  const out: ImageCandidate[] = [];
  for (const entry of entries) {
    const configBytes = await src.read(entry.Config);
    const named = digestInName(entry.Config);
    const configDigest = sha256Of(configBytes);
    if (named !== undefined) checkDocument(configBytes, `config ${entry.Config}`, named);
    const what = `config ${shortDigest(configDigest)}`;
    const doc = parseJson(configBytes.toString('utf8'), ImageConfigDocSchema, what);
    checkLayerCount(`${src.label}: manifest.json`, entry.Layers.length, doc.rootfs.diff_ids.length);
    out.push({
      refs: [...new Set((entry.RepoTags ?? []).map((t) => normalizeRef(t)))],
      config: { bytes: configBytes, digest: configDigest, doc },
      documents: [],
      layers: entry.Layers.map((rel, i) => {
        const blobDigest = rel.startsWith('blobs/') ? digestInName(rel) : undefined;
        const diffId = doc.rootfs.diff_ids[i] as Digest;
        return blobDigest === undefined ? { rel, diffId } : { rel, blobDigest, diffId };
      }),
    });
  }
  return out;
}
