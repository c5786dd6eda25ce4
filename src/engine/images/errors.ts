/**
 * The one error type the image store throws for bad input or a bad image: its message is a single line
 * that names the image, layer or file at fault, so the CLI can print it as is.
 */
export class ImageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message.replace(/\s*\n\s*/g, ' '), options);
    this.name = 'ImageError';
  }
}

/** The first line of an unknown error, for wrapping it into an ImageError with context. */
export function reason(err: unknown): string {
  if (err instanceof Error) return (err.message.split('\n')[0] ?? '').trim() || err.name;
  return String(err);
}
