// Process liveness as tests mean it.
import { readFileSync } from 'node:fs';

/**
 * True while process `pid` runs. A zombie counts as exited: it only waits
 * for its parent to reap it, and how soon that happens is up to the parent
 * (or the machine's init process), not rayts.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ...: comm may contain spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
