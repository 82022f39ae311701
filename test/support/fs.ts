// Marker files: tasks write them in a fresh temp dir; the test reads or
// waits for them (see wait.ts waitForFile).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A fresh directory under the OS temp dir, named rayts-<prefix>-XXXXXX. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rayts-${prefix}-`));
}

/** Names in `dir` that start with `prefix`, sorted. */
export function filesIn(dir: string, prefix: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith(prefix)).sort();
}
