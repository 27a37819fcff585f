import fs from 'node:fs/promises';
import { writeFileSafely } from './atomic-file.js';

/**
 * Replaces a file the user owns (config/mcp-proxy.yaml, compose.yaml) atomically, keeping its mode and,
 * when run as root, its owner: an edit by a command must not change who may read the file.
 */
export async function rewriteFileKeepingMode(file: string, text: string, defaultMode = 0o644): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  const root = process.getuid?.() === 0;
  await writeFileSafely(file, text, {
    mode: st ? st.mode & 0o777 : defaultMode,
    owner: st && root ? { uid: st.uid, gid: st.gid } : undefined,
  });
}
