/** A network spec as it arrives at the control API (wire messages carry empty strings for unset fields). */
import { z } from 'zod';

export const networkSpecSchema = z.object({
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, 'must be 1-63 characters of [a-zA-Z0-9_.-], starting with a letter or digit'),
  driver: z.union([z.literal(''), z.literal('overlay')], { error: 'only the overlay driver is supported in a swarm' }).transform(() => 'overlay' as const),
  subnet: z.string().default(''),
  gateway: z.string().default(''),
  attachable: z.boolean().default(false),
  labels: z.record(z.string(), z.string()).default({}),
}).refine((s) => s.subnet !== '' || s.gateway === '', { message: 'a gateway needs a subnet (--subnet)', path: ['gateway'] });
