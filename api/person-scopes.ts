/**
 * Which of the SMART scopes a person asks for they may hold, by what they are to the records. Applied when a person
 * approves an app (api/sign-in-pages.ts) and again to every person's token (api/authenticate.ts), so that a token
 * issued before an account's role changed, or by an external identity provider, grants no more than the rule allows.
 *
 *   patient, representative   patient/ scopes, within their own patients (or the one launched with); no user/
 *                             scopes: "whatever the user may see" is, for them, their patients' records, which
 *                             patient/ scopes already reach, and a user/ grant is not limited to a patient compartment.
 *   practitioner, registration  user/ scopes; patient/ scopes only with a patient they chose at launch
 *                             (launch/patient), never for patients they did not pick.
 */
import { isUserScope, SIGN_IN_SCOPES, type PersonRole } from './access.ts';

export interface ScopeDecision {
  granted: string[];
  /** Scopes asked for and not granted, each with the reason shown to the person. */
  refused: Array<{ scope: string; reason: string }>;
}

/** Splits `requested` (already SMART user scopes or sign-in scopes) into what `role` may hold and what it may not. */
export function personScopes(role: PersonRole, requested: readonly string[], hasLaunchPatient: boolean): ScopeDecision {
  const decision: ScopeDecision = { granted: [], refused: [] };
  const staff = role === 'practitioner' || role === 'registration';
  for (const scope of new Set(requested)) {
    if (!isUserScope(scope)) {
      decision.refused.push({ scope, reason: 'not a scope people sign in with' });
    } else if ((SIGN_IN_SCOPES as readonly string[]).includes(scope)) {
      if (scope === 'launch/patient' && !hasLaunchPatient) decision.refused.push({ scope, reason: 'no patient in context' });
      else decision.granted.push(scope);
    } else if (scope.startsWith('patient/')) {
      if (staff && !hasLaunchPatient) decision.refused.push({ scope, reason: 'patient access needs a patient chosen at launch (launch/patient)' });
      else decision.granted.push(scope);
    } else if (!staff) {
      decision.refused.push({ scope, reason: 'patients and representatives read their records through patient/ scopes' });
    } else {
      decision.granted.push(scope);
    }
  }
  return decision;
}
