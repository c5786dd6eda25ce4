/**
 * A pull holds the store's lock only to plan and to commit: two pulls download at the same time, an
 * `rm` of another image goes through while a pull is half-way, and the sweep that rm runs keeps what
 * the pull has found or put in place but not yet committed. Registries here hold chosen blobs back
 * until the test lets them go, so "at the same time" is observed, not hoped for.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ImageStore } from '../store.js';
import { makeTempDir, removeTempDir } from '../../../../testkit/images.js';
import { fakeImage, randomLayer, startFakeRegistry, type FakeImage, type FakeRegistry, type Override } from '../../../../testkit/fake-registry.js';
import { RegistryClient } from './client.js';

const LAYER_BYTES = 256 * 1024;
const ARRIVAL_MS = 10_000;

let shared: string;
let layers: Record<'one' | 'two' | 'three' | 'four', { data: Buffer; diffId: string }>;
let work: string;
let store: ImageStore;
let client: RegistryClient;
const registries: FakeRegistry[] = [];
const gates: Gate[] = [];

beforeAll(() => {
  shared = makeTempDir();
  layers = {
    one: randomLayer(shared, 'one', LAYER_BYTES),
    two: randomLayer(shared, 'two', LAYER_BYTES),
    three: randomLayer(shared, 'three', LAYER_BYTES),
    four: randomLayer(shared, 'four', LAYER_BYTES),
  };
});
afterAll(() => removeTempDir(shared));
beforeEach(async () => {
  work = makeTempDir();
  store = await ImageStore.open(join(work, 'images'));
  client = new RegistryClient();
});
afterEach(async () => {
  for (const g of gates.splice(0)) g.open();
  client.close();
  for (const r of registries.splice(0)) await r.close();
  removeTempDir(work);
});

/** Holds back the answer to one blob's GET until open(); `arrived` resolves when the request comes. */
interface Gate {
  override: Override;
  arrived: Promise<void>;
  open(): void;
}

function gate(image: FakeImage, layerIndex: number): Gate {
  const layer = image.layers[layerIndex] as FakeImage['layers'][number];
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  let arrive!: () => void;
  const arrived = new Promise<void>((resolve) => { arrive = resolve; });
  const override: Override = (_req, res: ServerResponse, path) => {
    if (!path.endsWith(`/blobs/${layer.digest}`)) return false;
    arrive();
    void opened.then(() => res.writeHead(200, { 'content-length': layer.data.length }).end(layer.data));
    return true;
  };
  const g = { override, arrived, open };
  gates.push(g);
  return g;
}

async function serve(image: FakeImage, override?: Override): Promise<string> {
  const r = await startFakeRegistry(image, override);
  registries.push(r);
  return `${r.addr}/test/app:latest`;
}

/** Resolves when `p` does, or fails the test after ARRIVAL_MS with `what` (instead of hanging). */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ARRIVAL_MS} ms`)), ARRIVAL_MS); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const layerDir = (diffId: string): string => join(work, 'images/layers', diffId.slice('sha256:'.length));

describe('pulls outside the store lock', () => {
  test('two pulls of different images download at the same time and both land', async () => {
    const a = fakeImage([layers.one]);
    const b = fakeImage([layers.two]);
    const gateA = gate(a, 0);
    const gateB = gate(b, 0);
    const refA = await serve(a, gateA.override);
    const refB = await serve(b, gateB.override);
    const pullA = store.pull(refA, { client });
    const pullB = store.pull(refB, { client });
    // Both registries are asked for their blob while neither has answered: the pulls overlap.
    await within(Promise.all([gateA.arrived, gateB.arrived]), 'both blob requests');
    gateA.open();
    gateB.open();
    const [ra, rb] = await Promise.all([pullA, pullB]);
    expect(store.list().map((i) => i.id).sort()).toEqual([ra.image.id, rb.image.id].sort());
    expect(readFileSync(join(layerDir(layers.two.diffId), 'two')).length).toBe(LAYER_BYTES);
    expect(readdirSync(join(work, 'images/tmp'))).toEqual([]);
  });

  test('an rm of another image goes through during a pull, and its sweep keeps what the pull found or put in place', async () => {
    // "old" is the only image with layer one; "new" shares it and adds three, then four.
    const old = fakeImage([layers.one]);
    const fresh = fakeImage([layers.one, layers.three, layers.four]);
    const oldRef = await serve(old);
    await store.pull(oldRef, { client });
    const hold = gate(fresh, 2);
    const freshRef = await serve(fresh, hold.override);
    // One layer at a time: three is unpacked and in place, uncommitted, when four's request arrives.
    const pulling = store.pull(freshRef, { client, concurrency: 1 });
    await within(hold.arrived, 'the request for layer four');
    expect(existsSync(layerDir(layers.three.diffId))).toBe(true);

    const removed = await within(store.remove(oldRef), 'rm of the other image during the pull');
    // The image is gone; layer one, which only it named, is kept for the pull that reported it present.
    expect(removed.untagged).toEqual([oldRef]);
    expect(store.list()).toEqual([]);
    expect(existsSync(layerDir(layers.one.diffId))).toBe(true);
    expect(existsSync(layerDir(layers.three.diffId))).toBe(true);

    hold.open();
    const result = await pulling;
    for (const l of [layers.one, layers.three, layers.four]) expect(existsSync(layerDir(l.diffId))).toBe(true);
    expect(store.lowerDirs(result.image)).toEqual([layers.four, layers.three, layers.one].map((l) => layerDir(l.diffId)));
    expect(readdirSync(join(work, 'images/tmp'))).toEqual([]);
    // Once committed, an ordinary rm deletes the layers again: the pins went with the pull.
    await store.remove(freshRef);
    expect(readdirSync(join(work, 'images/layers'))).toEqual([]);
  });
});
