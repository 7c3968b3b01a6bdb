/** A verification's outcome, check by check, as `anchorline verify` prints it: name, PASS or FAIL, and the detail. */
import type { VerificationCheck } from '../../../anchor/index.ts';

export interface Verdict {
  ok: boolean;
  checks: VerificationCheck[];
  at: Date;
  /** What was verified, when it is not plain from the view (a bundle brought forward, two checkpoints). */
  subject?: string;
}

export function verdictOf(checks: VerificationCheck[], subject?: string): Verdict {
  return { ok: checks.length > 0 && checks.every((check) => check.ok), checks, at: new Date(), ...(subject === undefined ? {} : { subject }) };
}

export function VerdictView({ verdict, testid }: { verdict: Verdict; testid: string }) {
  const failed = verdict.checks.filter((check) => !check.ok);
  return (
    <section class={`verdict ${verdict.ok ? 'verdict-ok' : 'verdict-failed'}`} aria-live="polite" data-testid={testid} data-ok={String(verdict.ok)}>
      <h2>{verdict.ok ? '✔ Verified in this browser' : '✘ Not verified'}</h2>
      {verdict.subject ? <p data-testid={`${testid}-subject`}>{verdict.subject}</p> : null}
      <p>
        {verdict.ok
          ? `All ${verdict.checks.length} checks passed, computed here at ${verdict.at.toLocaleTimeString()}.`
          : `${failed.length} of ${verdict.checks.length} checks failed: ${failed.map((check) => check.name).join(', ')}.`}
      </p>
      <ul class="checks">
        {/* Keyed by position: a bundle brought forward reports log-key twice, for the bundle and for the document. */}
        {verdict.checks.map((check, i) => (
          <li key={i} class={check.ok ? 'check-pass' : 'check-fail'} data-testid="check-row" data-check={check.name} data-ok={String(check.ok)}>
            <span class="check-mark" aria-hidden="true">
              {check.ok ? '✔' : '✘'}
            </span>
            <span class="check-status">{check.ok ? 'PASS' : 'FAIL'}</span>
            <code class="check-name">{check.name}</code>
            <span class="check-detail">{check.detail}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
