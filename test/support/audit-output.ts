/** What `anchorline audit` writes, captured for a test instead of going to stdout and stderr. */
import type { AuditOutput } from '../../cli/audit.ts';

export function captured(): AuditOutput & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (text) => (out += text), err: (text) => (err += text), stdout: () => out, stderr: () => err };
}
