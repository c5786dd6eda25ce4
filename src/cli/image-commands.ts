/** `tsswarm image import|load|ls|rm|pull|push|tag|inspect` and `login`/`logout`. */
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { TransferProgress, type WireProgress } from './transfer-progress.js';
import { formatAgo, formatBytes } from './units.js';
import { printJson, printTable, shortId, type OutputFormat } from './format.js';
import type { DaemonClient } from './client.js';

interface WireImage { id: string; refs: string[]; layers: string[]; created: string; size: number; configJson: string; repoDigests: string[] }

export function imageCommands(connect: () => DaemonClient, format: () => OutputFormat): Command[] {
  const image = new Command('image').description('manage images on this node');

  image.addCommand(new Command('import').description('create an image from a rootfs tarball')
    .argument('<file>', 'rootfs tarball (tar or tar.gz)').argument('<name:tag>', 'reference for the new image')
    .action(async (file: string, ref: string) => {
      const { images } = await connect().call<{ images: WireImage[] }>('ImageImport', { path: resolve(file), ref });
      for (const img of images) process.stdout.write(`${img.id}\n`);
    }));

  image.addCommand(new Command('load').description('load images from an OCI layout (dir or tar) or a docker-save archive')
    .requiredOption('-i, --input <path>', 'the archive or directory to read')
    .action(async (o: { input: string }) => {
      const { images } = await connect().call<{ images: WireImage[] }>('ImageLoad', { path: resolve(o.input) });
      for (const img of images) {
        process.stdout.write(img.refs.length ? img.refs.map((r) => `Loaded image: ${r}\n`).join('') : `Loaded image ID: ${img.id}\n`);
      }
    }));

  image.addCommand(new Command('ls').alias('list').description('list images')
    .option('-q, --quiet', 'only show image ids')
    .option('--format <format>', 'table or json')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const { images } = await connect().call<{ images: WireImage[] }>('ImageList', {});
      if (o.quiet) { for (const i of images) process.stdout.write(`${shortId(i.id)}\n`); return; }
      if ((o.format ?? format()) === 'json') { printJson(images.map((i) => ({ ...i, config: JSON.parse(i.configJson || 'null'), configJson: undefined }))); return; }
      const rows: string[][] = [];
      for (const i of images) {
        const refs = i.refs.length ? i.refs : ['<none>:<none>'];
        for (const ref of refs) {
          const colon = ref.lastIndexOf(':');
          rows.push([ref.slice(0, colon), ref.slice(colon + 1), shortId(i.id), formatAgo(i.created), formatBytes(i.size)]);
        }
      }
      printTable(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows);
    }));

  image.addCommand(new Command('rm').alias('remove').description('remove images')
    .option('-f, --force', 'remove even when containers use it')
    .argument('<images...>')
    .action(async (refs: string[], o: { force?: boolean }) => {
      const client = connect();
      for (const ref of refs) {
        try {
          const res = await client.call<{ untagged: string[]; deleted: string[] }>('ImageRemove', { ref, force: o.force ?? false });
          for (const u of res.untagged) process.stdout.write(`Untagged: ${u}\n`);
          for (const d of res.deleted) process.stdout.write(`Deleted: ${d}\n`);
        } catch (err) {
          process.stderr.write(`tsswarm: image rm ${ref}: ${(err as Error).message}\n`);
          process.exitCode = 1;
        }
      }
    }));
  image.addCommand(new Command('pull').description('pull an image from a registry')
    .argument('<name>', 'NAME[:TAG|@DIGEST]; short names are Docker Hub\'s, as in docker')
    .option('-q, --quiet', 'print only the reference')
    .action(async (ref: string, o: { quiet?: boolean }) => {
      const progress = new TransferProgress(process.stdout);
      if (!o.quiet && !ref.includes('@') && !/:[^/]*$/.test(ref)) progress.line('Using default tag: latest');
      for await (const e of connect().stream<WireProgress>('ImagePull', { ref })) {
        if (o.quiet) { if (e.done) process.stdout.write(`${e.reference}\n`); continue; }
        if (!e.done) { progress.layer(e); continue; }
        progress.line(`Digest: ${e.digest}`);
        progress.line(`Status: ${e.status}`);
        progress.line(e.reference);
      }
    }));

  image.addCommand(new Command('push').description('push an image to a registry')
    .argument('<name>', 'NAME[:TAG] of a local image, the registry in its name')
    .option('-q, --quiet', 'print only the digest line')
    .action(async (ref: string, o: { quiet?: boolean }) => {
      const progress = new TransferProgress(process.stdout);
      const repo = ref.replace(/:[^/:]*$/, '');
      if (!o.quiet) progress.line(`The push refers to repository [${repo}]`);
      for await (const e of connect().stream<WireProgress>('ImagePush', { ref })) {
        if (!e.done) { if (!o.quiet) progress.layer(e); continue; }
        const tag = /:([^/:]+)$/.exec(ref)?.[1] ?? 'latest';
        progress.line(`${tag}: digest: ${e.digest} size: ${e.size}`);
      }
    }));

  image.addCommand(new Command('tag').description('give an image another name')
    .argument('<source>', 'image id or NAME[:TAG]').argument('<target>', 'NAME[:TAG]')
    .action(async (source: string, target: string) => {
      await connect().call('ImageTag', { source, target });
    }));

  image.addCommand(new Command('save').description('write images to a tar archive (docker\'s format, or an OCI layout)')
    .requiredOption('-o, --output <file>', 'the archive to write')
    .addOption(new Option('--format <format>', 'docker (what docker load reads) or oci').choices(['docker', 'oci']).default('docker'))
    .argument('<images...>')
    .action(async (refs: string[], o: { output: string; format: string }) => {
      await connect().call('ImageSave', { refs, path: resolve(o.output), format: o.format });
    }));

  image.addCommand(new Command('history').description('show the steps an image was made of, newest first')
    .argument('<image>')
    .option('--no-trunc', 'do not truncate the commands')
    .option('--format <format>', 'table or json')
    .action(async (ref: string, o: { trunc: boolean; format?: string }) => {
      const { entries } = await connect().call<{ entries: { created: string; createdBy: string; comment: string; size: number; emptyLayer: boolean }[] }>('ImageHistory', { ref });
      if ((o.format ?? format()) === 'json') { printJson(entries); return; }
      printTable(['CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], entries.map((e) => [
        e.created ? formatAgo(e.created) : '<missing>', o.trunc && e.createdBy.length > 45 ? `${e.createdBy.slice(0, 44)}…` : e.createdBy, formatBytes(e.size), e.comment,
      ]));
    }));

  image.addCommand(new Command('prune').description('remove untagged images (with -a, every image no container uses)')
    .option('-a, --all', 'remove every image no container uses')
    .option('-f, --force', 'do not ask (tsswarm never asks)')
    .action(async (o: { all?: boolean }) => {
      const res = await connect().call<{ untagged: string[]; deleted: string[] }>('ImagePrune', { all: o.all ?? false });
      if (res.untagged.length || res.deleted.length) process.stdout.write('Deleted Images:\n');
      for (const u of res.untagged) process.stdout.write(`untagged: ${u}\n`);
      for (const d of res.deleted) process.stdout.write(`deleted: ${d}\n`);
    }));

  image.addCommand(new Command('inspect').description('show an image\'s details as JSON')
    .argument('<images...>')
    .action(async (refs: string[]) => {
      const out: unknown[] = [];
      for (const ref of refs) {
        const i = await connect().call<WireImage>('ImageInspect', { ref });
        out.push({ Id: i.id, RepoTags: i.refs, RepoDigests: i.repoDigests, Created: i.created, Size: i.size, Config: JSON.parse(i.configJson || 'null'), RootFS: { Type: 'layers', Layers: i.layers } });
      }
      printJson(out);
    }));
  return [image];
}

/** Reads a password piped to stdin (`--password-stdin`), without its trailing newline. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** `tsswarm login|logout`: the daemon checks the credentials against the registry and keeps them. */
export function loginCommands(connect: () => DaemonClient): Command[] {
  const login = new Command('login').description('log in to a registry (the daemon keeps the credentials, in docker\'s config.json format)')
    .argument('[registry]', 'host[:port]; default Docker Hub')
    .option('-u, --username <user>')
    .option('-p, --password <password>', 'the password (prefer --password-stdin: this one shows in the process list)')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (registry: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean }) => {
      if (!o.username) throw new Error('login: give a username with -u');
      if (o.password && o.passwordStdin) throw new Error('login: --password and --password-stdin are mutually exclusive');
      const password = o.passwordStdin ? await readStdin() : o.password;
      if (!password) throw new Error('login: give the password with --password-stdin');
      const res = await connect().call<{ status: string }>('RegistryLogin', { registry: registry ?? '', username: o.username, password });
      process.stdout.write(`${res.status}\n`);
    });
  const logout = new Command('logout').description('forget a registry\'s credentials')
    .argument('[registry]', 'host[:port]; default Docker Hub')
    .action(async (registry: string | undefined) => {
      const res = await connect().call<{ status: string }>('RegistryLogout', { registry: registry ?? '' });
      process.stdout.write(`${res.status}\n`);
    });
  return [login, logout];
}
