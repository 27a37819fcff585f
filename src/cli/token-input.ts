import fs from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { ValidationError } from '../errors.js';
import { validateTunnelToken } from '../deployment/validate.js';

/**
 * Where a tunnel token may come from. Never argv: a token on the command line lands in shell history
 * and in `ps` for every user of the host.
 */
export interface TokenSources {
  tunnelTokenFile?: string;
  tunnelTokenStdin?: boolean;
}

/** Returns the validated token from --tunnel-token-file, --tunnel-token-stdin or $TUNNEL_TOKEN, if any. */
export async function readTokenFromSources(sources: TokenSources): Promise<string | undefined> {
  if (sources.tunnelTokenFile && sources.tunnelTokenStdin) {
    throw new ValidationError('--tunnel-token-file and --tunnel-token-stdin are mutually exclusive', 'pass the token one way only', 'FLAGS_CONFLICT');
  }
  if (sources.tunnelTokenFile) {
    let raw: string;
    try {
      raw = await fs.readFile(sources.tunnelTokenFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code})`;
      throw new ValidationError(`--tunnel-token-file ${sources.tunnelTokenFile} ${why}`, 'save the token from the Console to a file readable by you, e.g. with umask 077', 'TUNNEL_TOKEN_FILE_UNREADABLE');
    }
    return validateTunnelToken(raw, `--tunnel-token-file ${sources.tunnelTokenFile}`);
  }
  if (sources.tunnelTokenStdin) {
    if (process.stdin.isTTY) {
      throw new ValidationError('--tunnel-token-stdin expects the token on a pipe, but stdin is a terminal', 'e.g. pass-cli show tunnel | mcp-tunnel init --tunnel-token-stdin ...', 'STDIN_IS_TERMINAL');
    }
    return validateTunnelToken(await text(process.stdin), '--tunnel-token-stdin');
  }
  const fromEnv = process.env.TUNNEL_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '') return validateTunnelToken(fromEnv, 'the TUNNEL_TOKEN environment variable');
  return undefined;
}
