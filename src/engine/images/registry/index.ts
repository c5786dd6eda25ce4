/** The registry client: what the CLI, the daemon and the agent use to pull and push (see store.pull/push). */
export { RegistryClient, type RegistryClientOptions, RepositoryClient } from './client.js';
export { CredentialStore, defaultCredentialsPath, dockerConfigPath, type CredentialLookup, type Credentials } from './credentials.js';
export { RegistryError, type RegistryErrorKind } from './errors.js';
export { type PullOptions } from './pull.js';
export { type PushOptions, type PushResult } from './push.js';
export { layerId, type PullEvent, type PullLayerStatus, type PushEvent, type PushLayerStatus } from './progress.js';
export { parseRemoteReference, type RemoteReference } from './remote-reference.js';
export { DEFAULT_CERTS_DIRS, type TransportOptions } from './transport.js';
