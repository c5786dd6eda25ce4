/**
 * The registry client's error: an ImageError (one line, printable as is) with a `kind`, so that the
 * agent can report a task's failure the way docker does ("No such image: ...", "unauthorized: ...")
 * and decide what is worth retrying without parsing messages.
 */
import { ImageError } from '../errors.js';

export type RegistryErrorKind =
  | 'not-found' // repository, tag or digest unknown to the registry
  | 'unauthorized' // no or wrong credentials, or access denied
  | 'unreachable' // connection refused, DNS, TLS handshake
  | 'timeout' // the registry stopped answering
  | 'interrupted' // a download was cut and retries did not finish it
  | 'digest' // bytes that do not match their digest
  | 'platform' // no manifest for this node's platform
  | 'too-large' // a manifest or config over the size limit
  | 'unsupported' // schema 1, foreign layers, artifacts that are not images
  | 'protocol'; // anything else the registry answered that makes no sense

export class RegistryError extends ImageError {
  constructor(readonly kind: RegistryErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryError';
  }
}
