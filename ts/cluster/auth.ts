// The cluster's auth token: every TCP connection to a cluster's GCS opens
// with it. Every process reads RAYTS_AUTH_TOKEN first, then
// ~/.rayts/auth_token. A head node takes RAYTS_AUTH_TOKEN when it is set;
// otherwise it uses the token file, generating it (32 random bytes, hex,
// mode 0600 in a 0700 ~/.rayts) when there is none.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const TOKEN_ENV = 'RAYTS_AUTH_TOKEN';

/** ~/.rayts/auth_token (HOME as this process sees it). */
export function tokenFilePath(): string {
  return path.join(os.homedir(), '.rayts', 'auth_token');
}

function readTokenFile(): string | undefined {
  try {
    const t = readFileSync(tokenFilePath(), 'utf8').trim();
    return t === '' ? undefined : t;
  } catch {
    return undefined;
  }
}

/** The token this process presents: RAYTS_AUTH_TOKEN, else the token file; undefined if neither. */
export function readToken(): string | undefined {
  const env = process.env[TOKEN_ENV];
  if (env !== undefined && env.trim() !== '') return env.trim();
  return readTokenFile();
}

export interface HeadToken {
  token: string;
  /** Where it came from: the environment, the existing file, or generated now (and written to the file). */
  source: 'env' | 'file' | 'generated';
}

/** The token a head node uses (see the file comment). */
export function headToken(): HeadToken {
  const env = process.env[TOKEN_ENV];
  if (env !== undefined && env.trim() !== '') return { token: env.trim(), source: 'env' };
  const existing = readTokenFile();
  if (existing !== undefined) return { token: existing, source: 'file' };
  const token = randomBytes(32).toString('hex');
  const file = tokenFilePath();
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, token + '\n', { mode: 0o600 });
  chmodSync(file, 0o600); // an existing empty file keeps its mode otherwise
  return { token, source: 'generated' };
}

/** The message for a process that has no token to present. */
export function noTokenMessage(address: string): string {
  return `no auth token for the cluster at ${address}: set ${TOKEN_ENV} to the cluster's token, or copy the head's ` +
    `${path.join('~', '.rayts', 'auth_token')} to ${tokenFilePath()} (mode 0600)`;
}
