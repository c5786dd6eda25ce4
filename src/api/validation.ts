import { z } from 'zod';

/** Flattens a schema failure into the one line a user sees: "what: field.path: problem; ...". */
export function describeIssues(what: string, error: z.ZodError): string {
  const parts = error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  return `invalid ${what}: ${parts.join('; ')}`;
}

export class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValidationError';
  }
}

/** Parses `input` with `schema`, or throws a ValidationError naming every bad field. */
export function validate<T extends z.ZodType>(what: string, schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(describeIssues(what, result.error));
  return result.data;
}
