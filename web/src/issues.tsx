/**
 * Mapping issues as the console shows them: where in an HL7 v2 message an issue's location points (so the message
 * view can mark the field), and the table of a message's or a dry run's issues. The issues themselves are the
 * engine's (mappers/issues.ts); the console only places and lists them.
 */
import type { MappingIssue } from './types.ts';

export type IssueSeverity = MappingIssue['severity'];

/** Most serious first: a field with several issues is marked as its worst. */
const SEVERITY_RANK: Record<IssueSeverity, number> = { error: 0, warning: 1, information: 2 };

export function worstSeverity(issues: readonly MappingIssue[]): IssueSeverity | undefined {
  let worst: IssueSeverity | undefined;
  for (const issue of issues) if (worst === undefined || SEVERITY_RANK[issue.severity] < SEVERITY_RANK[worst]) worst = issue.severity;
  return worst;
}

/** Where an issue's location points in an HL7 v2 message. */
export interface Hl7Place {
  segment: string;
  /** Which segment of that name, from 1. */
  occurrence: number;
  /** The field number (MSH numbered as the standard does); absent when the location names the whole segment. */
  field?: number;
}

/**
 * `PID-8` -> PID, first occurrence, field 8; `OBX[3]-2` -> the third OBX, field 2; `PV1` -> the first PV1. What
 * follows the field (a component `.4`, a repetition) is not marked more finely than the field. A location that is not
 * an HL7 v2 place (`Patient`, a C-CDA path, a DICOM tag, none) gives undefined.
 */
export function hl7Place(location: string): Hl7Place | undefined {
  const match = /^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+))?(?![A-Za-z0-9])/.exec(location.trim());
  if (!match) return undefined;
  const occurrence = match[2] === undefined ? 1 : Number(match[2]);
  if (occurrence < 1) return undefined;
  return { segment: match[1]!, occurrence, ...(match[3] === undefined ? {} : { field: Number(match[3]) }) };
}

/** One issue placed on a segment of the message: `index` is its position in the message's list of issues. */
export interface PlacedIssue {
  issue: MappingIssue;
  index: number;
  field: number | undefined;
}

/**
 * The issues that point into the message, by the index of the segment they point at (segment names in message
 * order). Issues whose location is not an HL7 v2 place, or names a segment the message does not have, are left out:
 * the issue table still lists them.
 */
export function issuesBySegment(segmentNames: readonly string[], issues: readonly MappingIssue[]): Map<number, PlacedIssue[]> {
  const segmentIndex = new Map<string, number>();
  const seen = new Map<string, number>();
  segmentNames.forEach((name, i) => {
    const occurrence = (seen.get(name) ?? 0) + 1;
    seen.set(name, occurrence);
    segmentIndex.set(`${name}[${occurrence}]`, i);
  });
  const placed = new Map<number, PlacedIssue[]>();
  issues.forEach((issue, index) => {
    const place = hl7Place(issue.location);
    const at = place && segmentIndex.get(`${place.segment}[${place.occurrence}]`);
    if (at === undefined) return;
    placed.set(at, [...(placed.get(at) ?? []), { issue, index, field: place!.field }]);
  });
  return placed;
}

/** The text a marked field or segment shows on hover: one line per issue. */
export function issueTitle(issues: readonly MappingIssue[]): string {
  return issues.map((issue) => `${issue.severity} ${issue.code}: ${issue.detail}${issue.value !== undefined ? ` (sent: ${issue.value})` : ''}`).join('\n');
}

/** A code that may wrap after its underscores (not mid-word) in a narrow table. */
function breakable(code: string) {
  return code.split('_').map((part, i, parts) => (i < parts.length - 1 ? [part, '_', <wbr key={i} />] : part));
}

export function SeverityBadge({ severity }: { severity: IssueSeverity }) {
  return (
    <span class={`badge badge-issue-${severity}`} data-testid="issue-severity">
      {severity}
    </span>
  );
}

/**
 * A message's (or a dry run's) issues in the order the mapper found them. `onLocate`, when given, makes each HL7 v2
 * location a button that shows the field in the message.
 */
export function IssueTable({ issues, onLocate, testid = 'mapping-issues' }: { issues: readonly MappingIssue[]; onLocate?: (index: number) => void; testid?: string }) {
  return (
    <div class="table-wrap">
      <table class="table issue-table" data-testid={testid}>
        <thead>
          <tr>
            <th scope="col">severity</th>
            <th scope="col">code</th>
            <th scope="col">location</th>
            <th scope="col">detail</th>
            <th scope="col">value as sent</th>
          </tr>
        </thead>
        <tbody>
          {issues.map((issue, index) => (
            <tr key={index} data-testid="mapping-issue" data-severity={issue.severity} data-code={issue.code} data-location={issue.location}>
              <td>
                <SeverityBadge severity={issue.severity} />
              </td>
              <td>
                <code class="code">{breakable(issue.code)}</code>
              </td>
              <td class="nowrap">
                {onLocate && hl7Place(issue.location) ? (
                  <button type="button" class="link-button" onClick={() => onLocate(index)} title="Show this field in the message">
                    <code>{issue.location}</code>
                  </button>
                ) : (
                  <code>{issue.location || '–'}</code>
                )}
              </td>
              <td>{issue.detail}</td>
              <td class="wrap">{issue.value !== undefined ? <code data-testid="issue-value">{issue.value}</code> : <span class="muted">–</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
