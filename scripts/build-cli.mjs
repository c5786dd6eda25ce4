// Bundles the CLI into one CommonJS file, dist/cli/tsswarm.cjs, so that `tsswarm ...` starts without
// the ESM loader resolving a hundred files and without parsing .proto text: the services' JSON
// descriptor is built in (src/api/descriptor.ts reads it). The daemon stays unbundled:
// `tsswarm daemon` imports dist/src/daemon/main.js (built by tsc) at run time.
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The services the CLI calls as protobufjs JSON, one descriptor per .proto file so that a command
 * reads only its service's messages; fields camelCase, as src/api/proto.ts loads them.
 */
const descriptors = Object.fromEntries(['node.proto', 'control.proto'].map((file) => [file, JSON.stringify(
  new protobuf.Root().loadSync(join(repo, 'proto', file), { keepCase: false }).resolveAll().toJSON({ keepComments: false }),
)]));

/**
 * What the bundle leaves to node. The daemon (dist/src/daemon/main.js, ESM) is long-running, so its
 * start time is moot; but import() does not work inside the code-cached vm.Script bin/tsswarm runs
 * the bundle in (node 20), so a plain CommonJS file beside the bundle, import-daemon.cjs, imports it.
 * proto.js (.proto parsing) is never reached: the bundle has the descriptor built in.
 */
const unbundled = {
  name: 'unbundled',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/daemon\/main\.js$/ }, () => ({ path: 'daemon', namespace: 'daemon-proxy' }));
    b.onLoad({ filter: /.*/, namespace: 'daemon-proxy' }, () => ({
      contents: 'export async function runDaemon(options) { return (await require("./import-daemon.cjs")()).runDaemon(options); }',
    }));
    b.onResolve({ filter: /^\.\/import-daemon\.cjs$/ }, (args) => ({ path: args.path, external: true }));
    b.onResolve({ filter: /^\.\.\/api\/proto\.js$/ }, () => ({ path: '../src/api/proto.js', external: true }));
  },
};

/**
 * commander requires child_process when it loads (~2 ms of node compiling it), only to spawn
 * executable subcommands, which tsswarm has none of: it gets child_process when it spawns.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^node:child_process$/ }, (args) =>
      (/[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'lazy-child-process' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: 'module.exports = { spawn: (...args) => require("node:child_process").spawn(...args) };',
    }));
  },
};
mkdirSync(join(repo, 'dist/cli'), { recursive: true });
writeFileSync(join(repo, 'dist/cli/import-daemon.cjs'),
  '// Imports the unbundled daemon for the bundled CLI (scripts/build-cli.mjs says why).\nmodule.exports = () => import("../src/daemon/main.js");\n');

await build({
  entryPoints: [join(repo, 'src/cli/main.ts')],
  outfile: join(repo, 'dist/cli/tsswarm.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  define: {
    // import.meta.url has no CommonJS equivalent that esbuild fills in: the bundle's own URL.
    'import.meta.url': '__bundle_url',
    TSSWARM_PROTO_DESCRIPTORS: JSON.stringify(descriptors),
  },
  banner: { js: 'const __bundle_url = require("node:url").pathToFileURL(__filename).href;' },
  // grpc-js loads proto-loader only for channelz, which the CLI never turns on.
  external: ['@grpc/proto-loader'],
  plugins: [unbundled, lazyChildProcess],
  minify: true,
  keepNames: true,
  logLevel: 'warning',
});

// The V8 code cache bin/tsswarm loads the bundle with: made by running a command through the new
// bundle (one that loads gRPC and dials, against a socket that does not exist), so the functions a
// command compiles are cached too. V8 checks the cache only by the source's length: a stale cache
// must never outlive its bundle.
const { rmSync, existsSync } = await import('node:fs');
const { spawnSync } = await import('node:child_process');
const codeCache = join(repo, 'dist/cli/tsswarm.cjs.codecache');
rmSync(codeCache, { force: true });
spawnSync(process.execPath, [join(repo, 'bin/tsswarm'), '-H', 'unix:///nonexistent/tsswarm-build.sock', 'container', 'run', '--rm', 'build', 'true'], {
  env: { ...process.env, TSSWARM_BUILD_CODE_CACHE: '1' },
  stdio: 'ignore',
});
if (!existsSync(codeCache)) throw new Error(`build-cli: ${codeCache} was not written`);
