/**
 * A bounded worker pool for pulls and pushes: dockerd moves 3 layers at a time by default, because
 * more parallel streams gain little on one link and cost memory and registry connections.
 */

/** Runs `fn` over `items`, `limit` at a time; stops taking new items after a failure and throws the first. */
export async function forEachConcurrently<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}
