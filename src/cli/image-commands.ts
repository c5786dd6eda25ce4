/** `tsswarm image import|load|ls|rm`. */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { formatAgo, formatBytes } from './units.js';
import { printJson, printTable, shortId, type OutputFormat } from './format.js';
import type { DaemonClient } from './client.js';

interface WireImage { id: string; refs: string[]; layers: string[]; created: string; size: number; configJson: string }

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
  return [image];
}
