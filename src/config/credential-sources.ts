import { homedir } from 'node:os';
import { ErrorCodes, TunnelError, registerSecret } from '../errors.js';
import { apiKeyExample } from './shell-syntax.js';
import type { Credentials } from './credentials.js';
import { credentialsFilePathIn, findLocalConfig, globalConfigPath, loadToml, nested, text } from './config-files.js';
import { loadStoredCredentials, normaliseApiUrl } from './stored-credentials.js';
import { untrustedProjectConfig } from './project-trust.js';

export const DEFAULT_API_URL = 'https://api.tensorlake.ai';

export interface CredentialInputs {
  /** --api-url */
  apiUrl?: string;
  /** --api-key */
  apiKey?: string;
  /** --pat */
  pat?: string;
  /** --organization */
  organizationId?: string;
  /** --project */
  projectId?: string;
  /** Environment to read TENSORLAKE_* from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Home directory holding .config/tensorlake/; default os.homedir(). */
  home?: string;
  /** Where the search for .tensorlake/config.toml starts; default process.cwd(). */
  cwd?: string;
}

/** Where each setting came from: a flag, an environment variable, a file path or "default" (never a value). */
export interface CredentialSourceNames {
  apiUrl: string;
  token?: string;
  organizationId?: string;
  projectId?: string;
}

export interface ResolvedCredentials {
  /** What authenticates: the API key if there is one from any source, else the PAT. */
  credentials: Credentials;
  /** Where the token came from, e.g. "--api-key" or a file path; "none" when there is none. */
  source: string;
  /** The API URL, normalised as `tl` does. */
  apiUrl: string;
  sources: CredentialSourceNames;
  /** The config files that were found (read or not). */
  files: { local?: string; global: string; credentials: string };
  warnings: string[];
}

export function credentialsFilePath(home = homedir()): string {
  return credentialsFilePathIn(home);
}

type Found = { value: string; source: string } | undefined;

function first(...candidates: [unknown, string][]): Found {
  for (const [value, source] of candidates) {
    const v = text(value);
    if (v !== undefined) return { value: v, source };
  }
  return undefined;
}

/**
 * Resolves the API URL, the token and the scope exactly as Tensorlake's CLI `tl` does:
 * flags, then environment, then the nearest .tensorlake/config.toml, then the global config, then
 * the token `tl login` stored for that API URL. An API key from any source beats a PAT from any
 * source. Never throws for a bad file: it becomes a warning naming the file.
 */
export function resolveCredentials(inputs: CredentialInputs = {}): ResolvedCredentials {
  const env = inputs.env ?? process.env;
  const home = inputs.home ?? homedir();
  const warnings: string[] = [];
  const foundLocal = findLocalConfig(inputs.cwd ?? process.cwd());
  const distrust = foundLocal === undefined ? undefined : untrustedProjectConfig(foundLocal);
  if (distrust) warnings.push(`Ignoring the project config ${foundLocal}: ${distrust}, so it could send your key to any host. Run from a directory you own, or fix its owner and mode`);
  const localPath = distrust ? undefined : foundLocal;
  const globalPath = globalConfigPath(home);
  const credentialsPath = credentialsFilePathIn(home);
  const local = loadToml(localPath, warnings, 'project config');
  const global = loadToml(globalPath, warnings, 'global config');

  const apiUrlFound = first(
    [inputs.apiUrl, '--api-url'],
    [env.TENSORLAKE_API_URL, 'TENSORLAKE_API_URL'],
    [nested(local, 'tensorlake.api_url'), localPath ?? ''],
    [nested(global, 'tensorlake.api_url'), globalPath],
  );
  const apiUrl = normaliseApiUrl(apiUrlFound?.value ?? DEFAULT_API_URL);
  const apiKey = first(
    [inputs.apiKey, '--api-key'],
    [env.TENSORLAKE_API_KEY, 'TENSORLAKE_API_KEY'],
    [nested(local, 'tensorlake.apikey'), localPath ?? ''],
    [nested(global, 'tensorlake.apikey'), globalPath],
  );
  const patGiven = first([inputs.pat, '--pat'], [env.TENSORLAKE_PAT, 'TENSORLAKE_PAT']);
  // The stored login is read only when it could matter: it is the one file that holds a token.
  const stored = apiKey === undefined && patGiven === undefined ? loadStoredCredentials(credentialsPath, apiUrl, warnings) : undefined;
  const pat = patGiven ?? (stored ? { value: stored.token, source: credentialsPath } : undefined);
  for (const s of [apiKey, pat]) registerSecret(s?.value);

  // A PAT given by flag or environment names its own scope: a stored one belongs to another login.
  const storedScope = patGiven === undefined ? stored : undefined;
  const flagOrg = first([inputs.organizationId, '--organization']);
  const flagProject = first([inputs.projectId, '--project']);
  const org = apiKey
    ? flagOrg
    : (flagOrg ?? first([env.TENSORLAKE_ORGANIZATION_ID, 'TENSORLAKE_ORGANIZATION_ID'], [storedScope?.organization, credentialsPath], [local?.organization, localPath ?? '']));
  const project = apiKey
    ? flagProject
    : (flagProject ?? first([env.TENSORLAKE_PROJECT_ID, 'TENSORLAKE_PROJECT_ID'], [storedScope?.project, credentialsPath], [local?.project, localPath ?? '']));

  const token = apiKey ?? pat;
  const credentials: Credentials = {
    ...(apiKey ? { apiKey: apiKey.value } : pat ? { pat: pat.value } : {}),
    ...(org ? { organizationId: org.value } : {}),
    ...(project ? { projectId: project.value } : {}),
    ...(token ? { source: token.source } : {}),
  };
  return {
    credentials,
    source: token?.source ?? 'none',
    apiUrl,
    sources: {
      apiUrl: apiUrlFound?.source ?? 'default',
      ...(token ? { token: token.source } : {}),
      ...(org ? { organizationId: org.source } : {}),
      ...(project ? { projectId: project.source } : {}),
    },
    files: { ...(localPath ? { local: localPath } : {}), global: globalPath, credentials: credentialsPath },
    warnings,
  };
}

/**
 * Refuses credentials that cannot work: none at all, or a PAT without the organization and project
 * it must name (an API key names its own project).
 */
export function checkResolvedCredentials(resolved: ResolvedCredentials): void {
  const c = resolved.credentials;
  if (!c.apiKey && !c.pat) {
    throw new TunnelError(
      ErrorCodes.NO_CREDENTIALS,
      `No API key: set TENSORLAKE_API_KEY or pass --api-key ${apiKeyExample()}, put apikey under [tensorlake] in .tensorlake/config.toml, or run tl login`,
    );
  }
  if (c.apiKey) return;
  const missing = [c.organizationId ? '' : 'an organization', c.projectId ? '' : 'a project'].filter(Boolean);
  if (missing.length === 0) return;
  throw new TunnelError(
    ErrorCodes.NO_CREDENTIALS,
    `The personal access token from ${resolved.source} needs ${missing.join(' and ')}: pass --organization and --project, set TENSORLAKE_ORGANIZATION_ID and TENSORLAKE_PROJECT_ID, add organization and project to .tensorlake/config.toml, or run tl login and select a project (an API key needs neither)`,
  );
}
