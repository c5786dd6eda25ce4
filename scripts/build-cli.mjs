// Bundles the CLI into one CommonJS file, dist/cli/tsswarm.cjs, so that `tsswarm ...` starts without
// the ESM loader resolving a hundred files and without parsing .proto text: the services'
// descriptors and codecs are built in (src/rpc/descriptor.ts reads them). The daemon stays unbundled:
// `tsswarm daemon` imports dist/src/daemon/main.js (built by tsc) at run time.
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The services the CLI calls, built into the bundle as the global TSSWARM_PROTO (src/cli/client.ts):
 * per .proto file (a command reads only its service's file) the protobufjs JSON descriptor, fields
 * camelCase as src/rpc/proto.ts loads them, and each message's codecs. protobufjs would generate
 * those with new Function() in every process (~4 ms a command); as source in the bundle they are
 * compiled once, into the code cache. Made from the JSON, exactly as the CLI will load it.
 */
function bundledProto(file) {
  const json = JSON.stringify(new protobuf.Root().loadSync(join(repo, 'proto', file), { keepCase: false }).resolveAll().toJSON({ keepComments: false }));
  const root = protobuf.Root.fromJSON(JSON.parse(json)).resolveAll();
  const types = [];
  const walk = (ns) => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) types.push(o);
      if (o.nestedArray) walk(o);
    }
  };
  walk(root);
  const codecs = types.map((t) => {
    // protobufjs wraps google.protobuf.* types (Any, ...) at setup; descriptor.ts does not.
    if (t.fullName.startsWith('.google.')) throw new Error(`build-cli: ${file} uses ${t.fullName}, which needs protobufjs's wrappers`);
    return `${JSON.stringify(t.fullName.slice(1))}: {
  ctor: () => ${protobuf.Type.generateConstructor(t).toString()},
  encode: (Writer, types, util) => ${protobuf.encoder(t).toString()},
  decode: (Reader, types, util, C) => ${protobuf.decoder(t).toString()},
  fromObject: (types, util, C) => ${protobuf.converter.fromObject(t).toString()},
  toObject: (types, util) => ${protobuf.converter.toObject(t).toString()},
}`;
  });
  return `${JSON.stringify(file)}: { descriptor: ${JSON.stringify(json)}, codecs: {\n${codecs.join(',\n')}\n} }`;
}
const protoModule = `export const TSSWARM_PROTO = {\n${['node.proto', 'control.proto'].map(bundledProto).join(',\n')}\n};\n`;
const bundledProtoPlugin = {
  name: 'bundled-proto',
  setup(b) {
    b.onResolve({ filter: /^tsswarm:proto$/ }, () => ({ path: 'proto', namespace: 'tsswarm' }));
    b.onLoad({ filter: /^proto$/, namespace: 'tsswarm' }, () => ({ contents: protoModule, loader: 'js' }));
  },
};

/**
 * What the bundle leaves to node. The daemon (dist/src/daemon/main.js, ESM) is long-running, so its
 * start time is moot; but import() does not work inside the code-cached vm.Script bin/tsswarm runs
 * the bundle in (node 20), so a plain CommonJS file beside the bundle, import-daemon.cjs, imports it.
 * proto.js (.proto parsing) is never reached: the bundle has the descriptor built in.
 */
const unbundled = {
  name: 'unbundled',
  setup(b) {
    b.onResolve({ filter: /^\.\/main\.js$/ }, (args) => (/[\\/]daemon[\\/]command\.ts$/.test(args.importer) ? { path: 'daemon', namespace: 'daemon-proxy' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'daemon-proxy' }, () => ({
      contents: 'export async function runDaemon(options) { return (await require("./import-daemon.cjs")()).runDaemon(options); }',
    }));
    b.onResolve({ filter: /^\.\/import-daemon\.cjs$/ }, (args) => ({ path: args.path, external: true }));
    b.onResolve({ filter: /^\.\.\/rpc\/proto\.js$/ }, () => ({ path: '../src/rpc/proto.js', external: true }));
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
  entryPoints: [join(repo, 'src/main.ts')],
  outfile: join(repo, 'dist/cli/tsswarm.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  define: {
    // import.meta.url has no CommonJS equivalent that esbuild fills in: the bundle's own URL.
    'import.meta.url': '__bundle_url',
  },
  banner: { js: 'const __bundle_url = require("node:url").pathToFileURL(__filename).href;' },
  // grpc-js loads proto-loader only for channelz, which the CLI never turns on.
  external: ['@grpc/proto-loader'],
  inject: ['tsswarm:proto'],
  plugins: [bundledProtoPlugin, unbundled, lazyChildProcess],
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
