/**
 * One message: its envelope, error and ACK, its raw content (HL7 v2 segment by segment with field numbers, C-CDA as
 * XML, DICOM as a summary and a download of the stored instance), the resources it wrote, what its mapping could not
 * map as sent (listed, and marked at the field in the segments), and the actions an operator takes on it: reprocess,
 * open in the mapping tester, verify a resource's proof.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, apiBytes } from '../api.ts';
import { ErrorNote, JsonBlock, Note, Panel, ShortHash, StateBadge, Timestamp, formatNumber, useAction } from '../components.tsx';
import { hl7Segments, prettyXml } from '../hl7.ts';
import { IssueTable, SeverityBadge, issueTitle, issuesBySegment, worstSeverity, type PlacedIssue } from '../issues.tsx';
import { href } from '../router.ts';
import type { MappingIssue, MessageDetail, ReprocessOutcome, WrittenVersion } from '../types.ts';

const HL7_PROTOCOLS = ['hl7v2-mllp', 'hl7v2-http'];

export function MessageView({ id }: { id: number }) {
  const [message, setMessage] = useState<MessageDetail | undefined>();
  const [outcome, setOutcome] = useState<ReprocessOutcome | undefined>();
  const loader = useAction(async () => setMessage(await api<MessageDetail>(`/admin/messages/${id}`)));
  useEffect(() => void loader.run(), [id]);

  // While the message waits to be mapped again, follow it until it is finished.
  useEffect(() => {
    if (message?.state !== 'queued') return;
    const timer = window.setTimeout(() => void loader.run(), 1000);
    return () => window.clearTimeout(timer);
  }, [message]);

  const reprocess = useAction(async () => {
    setOutcome(await api<ReprocessOutcome>('/admin/messages/reprocess', { body: { ids: [id] } }));
    await loader.run();
  });

  const isHl7 = message !== undefined && HL7_PROTOCOLS.includes(message.protocol);
  return (
    <div class="view" data-testid="message-detail" data-state={message?.state}>
      <header class="view-head">
        <h1>Message #{id}</h1>
        {message ? <StateBadge state={message.state} /> : null}
        <div class="view-actions">
          <a class="button button-quiet" href={href(message?.state === 'failed' || message?.state === 'rejected' ? '/dead-letters' : '/messages')}>
            ← Back
          </a>
          {isHl7 ? (
            <a class="button" href={href('/tester', { messageId: id })} data-testid="open-in-tester">
              Open in mapping tester
            </a>
          ) : null}
          {message?.disposition === 'accepted' ? (
            <button type="button" class="button button-primary" onClick={() => void reprocess.run()} disabled={reprocess.busy || message.state === 'queued'} data-testid="reprocess">
              {message.state === 'queued' ? 'Queued…' : 'Reprocess'}
            </button>
          ) : null}
        </div>
      </header>
      <ErrorNote error={loader.error} />
      <ErrorNote error={reprocess.error} />
      {outcome && outcome.requeued.length > 0 ? <Note kind="ok" testid="reprocess-outcome">Sent back to be mapped with the active mapping configs.</Note> : null}
      {message ? (
        <>
          {message.errorCode ? (
            <Note kind="error" testid="message-error">
              <code class="code">{message.errorCode}</code> {message.errorDetail}
            </Note>
          ) : null}
          {message.state === 'done' && message.mappingWarnings > 0 ? (
            <Note kind="warn" testid="message-warnings">
              Mapped with {message.mappingWarnings} {message.mappingWarnings === 1 ? 'warning' : 'warnings'}: what could not be mapped as sent is listed under Mapping issues
              {isHl7 ? ' and marked at its field in the message' : ''}.
            </Note>
          ) : null}
          <div class="grid-2">
            <Panel title="Envelope" testid="envelope">
              <dl class="facts">
                <dt>sender</dt>
                <dd>{message.sender || '–'}</dd>
                <dt>control id</dt>
                <dd>
                  <code>{message.controlId ?? '–'}</code>
                </dd>
                <dt>type</dt>
                <dd>{message.messageType ?? '–'}</dd>
                <dt>protocol</dt>
                <dd>{message.protocol}</dd>
                <dt>source</dt>
                <dd>{message.source}</dd>
                <dt>disposition</dt>
                <dd>{message.disposition}</dd>
                <dt>attempts</dt>
                <dd>{message.attempts}</dd>
                <dt>received</dt>
                <dd>
                  <Timestamp at={message.receivedAt} />
                </dd>
                <dt>processed</dt>
                <dd>
                  <Timestamp at={message.processedAt} />
                </dd>
                <dt>charset</dt>
                <dd>{message.charset ?? '–'}</dd>
                <dt>size</dt>
                <dd>{formatNumber(message.rawSize)} bytes</dd>
                <dt>SHA-256</dt>
                <dd>
                  <ShortHash hash={message.rawSha256} />
                </dd>
              </dl>
            </Panel>
            <Panel title="Acknowledgment" testid="ack">
              {message.ackText ? (
                <>
                  <p>
                    ACK code <code class="code">{message.ackCode}</code>
                  </p>
                  <SegmentTable text={message.ackText} testid="ack-segments" />
                </>
              ) : (
                <p class="muted">{message.ackCode ? `Answered ${message.ackCode}.` : 'No stored acknowledgment.'}</p>
              )}
            </Panel>
          </div>
          <Resources resources={message.resources} />
          {message.mappingIssues.length > 0 ? (
            <Panel title={`Mapping issues (${message.mappingIssues.length})`} testid="message-issues">
              <IssueTable issues={message.mappingIssues} onLocate={isHl7 ? showIssueInMessage : undefined} />
            </Panel>
          ) : null}
          <Panel title={isHl7 ? 'Message, segment by segment' : 'Content'} testid="raw-message">
            <RawContent message={message} />
          </Panel>
        </>
      ) : null}
    </div>
  );
}

function Resources({ resources }: { resources: WrittenVersion[] }) {
  const [open, setOpen] = useState<Record<string, unknown>>({});
  const show = useAction(async (key: string, path: string) => {
    setOpen({ ...open, [key]: await api(path, { accept: 'application/fhir+json' }) });
  });
  return (
    <Panel title="Resources written" testid="written-resources">
      {resources.length === 0 ? (
        <p class="muted">None yet.</p>
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th scope="col">resource</th>
              <th scope="col">version</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {resources.map((r) => {
              const key = `${r.resourceType}/${r.id}/${r.versionId}`;
              return (
                <tr key={key} data-testid="written-resource" data-resource-type={r.resourceType} data-resource-id={r.id} data-version-id={r.versionId}>
                  <td>
                    <code>
                      {r.resourceType}/{r.id}
                    </code>
                    {open[key] ? <JsonBlock value={open[key]} summary="resource JSON" open /> : null}
                  </td>
                  <td>
                    {r.versionId}
                    {r.current ? <span class="muted small"> (current)</span> : null}
                  </td>
                  <td class="row-actions">
                    <button type="button" class="button button-small" onClick={() => void show.run(key, `/fhir/${r.resourceType}/${encodeURIComponent(r.id)}/_history/${r.versionId}`)}>
                      View
                    </button>
                    <a class="button button-small" href={href('/proofs', { type: r.resourceType, id: r.id, vid: r.versionId })} data-testid="verify-proof-link">
                      Verify proof
                    </a>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <ErrorNote error={show.error} />
    </Panel>
  );
}

function RawContent({ message }: { message: MessageDetail }) {
  const download = useAction(async () => {
    const bytes = await apiBytes(`/blobs/${message.blobSha256}`, { accept: 'application/dicom' });
    const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/dicom' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = `${message.blobSha256}.dcm`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  if (HL7_PROTOCOLS.includes(message.protocol) && message.text !== null) return <SegmentTable text={message.text} testid="segments" issues={message.mappingIssues} />;
  if (message.protocol === 'cda' && message.text !== null) {
    return (
      <pre class="xml" data-testid="cda-text">
        {prettyXml(message.text)}
      </pre>
    );
  }
  return (
    <div data-testid="binary-summary">
      <p>
        {message.protocol === 'dicom' ? 'A DICOM instance: ' : 'Binary content: '}
        {formatNumber(message.rawSize)} bytes received; the inbox keeps {message.blobSha256 ? 'its header, and the whole instance in the blob store' : 'its raw bytes'}.
      </p>
      {message.blobSha256 ? (
        <p>
          Instance <ShortHash hash={message.blobSha256} />{' '}
          <button type="button" class="button button-small" onClick={() => void download.run()} disabled={download.busy}>
            Download instance
          </button>
        </p>
      ) : null}
      <ErrorNote error={download.error} />
    </div>
  );
}

/** Scrolls the message's segments to the field (or segment) an issue of the issue table points at. */
function showIssueInMessage(index: number): void {
  document.querySelector(`[data-testid="segments"] [data-issue-index~="${index}"]`)?.scrollIntoView({ behavior: 'smooth', block: 'center' });
}

/**
 * HL7 v2 segments as rows; each field shows its number, and its full name (PID-3) on hover. A field (or segment) a
 * mapping issue points at is marked with the worst severity among its issues, shows them on hover, and the issues of
 * each segment are listed under it. A field an issue names beyond the last one sent is shown, empty, to carry its mark.
 */
function SegmentTable({ text, testid, issues = [] }: { text: string; testid: string; issues?: readonly MappingIssue[] }) {
  const segments = hl7Segments(text);
  const placed = issuesBySegment(
    segments.map((segment) => segment.name),
    issues,
  );
  return (
    <div class="segments" data-testid={testid}>
      {segments.map((segment, i) => {
        const here = placed.get(i) ?? [];
        const segmentIssues = here.filter((p) => p.field === undefined);
        const fields = new Map(segment.fields.map((field) => [field.number, field.value]));
        for (const p of here) if (p.field !== undefined && !fields.has(p.field)) fields.set(p.field, '');
        return (
          <div class="segment" key={i} data-testid="segment" data-segment={segment.name}>
            <div class={`segment-name${segmentIssues.length > 0 ? ` segment-name-issue issue-${worstSeverity(segmentIssues.map((p) => p.issue))}` : ''}`} {...issueMarking(segmentIssues, testid)}>
              {segment.name}
              {segmentIssues.length > 0 ? <IssueMark placed={segmentIssues} /> : null}
            </div>
            <div class="segment-body">
              <div class="segment-fields">
                {[...fields.entries()]
                  .sort(([a], [b]) => a - b)
                  .map(([number, value]) => {
                    const name = `${segment.name}-${number}`;
                    const fieldIssues = here.filter((p) => p.field === number);
                    const worst = worstSeverity(fieldIssues.map((p) => p.issue));
                    return (
                      <div
                        class={`field-cell${value === '' ? ' field-empty' : ''}${worst ? ` field-issue issue-${worst}` : ''}`}
                        key={number}
                        title={fieldIssues.length > 0 ? `${name}\n${issueTitle(fieldIssues.map((p) => p.issue))}` : name}
                        data-field={name}
                        {...issueMarking(fieldIssues, testid)}
                      >
                        <span class="field-number">
                          {number}
                          {fieldIssues.length > 0 ? <IssueMark placed={fieldIssues} /> : null}
                        </span>
                        <span class="field-value">{value === '' ? '·' : value}</span>
                      </div>
                    );
                  })}
              </div>
              {here.length > 0 ? (
                <ul class="segment-issues" data-testid="segment-issues">
                  {here.map((p) => (
                    <li key={p.index} id={`${testid}-issue-${p.index}`} data-testid="segment-issue" data-severity={p.issue.severity} data-code={p.issue.code} data-location={p.issue.location}>
                      <SeverityBadge severity={p.issue.severity} /> <code>{p.issue.location}</code> <code class="code">{p.issue.code}</code> {p.issue.detail}
                      {p.issue.value !== undefined ? (
                        <>
                          {' '}
                          <span class="muted">sent:</span> <code>{p.issue.value}</code>
                        </>
                      ) : null}
                    </li>
                  ))}
                </ul>
              ) : null}
            </div>
          </div>
        );
      })}
    </div>
  );
}

/** The attributes that tie a marked field or segment to its issues: for tests, for the issue table, for screen readers. */
function issueMarking(placed: readonly PlacedIssue[], testid: string): Record<string, string> {
  if (placed.length === 0) return {};
  return {
    'data-issue-codes': placed.map((p) => p.issue.code).join(' '),
    'data-issue-severity': worstSeverity(placed.map((p) => p.issue))!,
    'data-issue-index': placed.map((p) => p.index).join(' '),
    'aria-describedby': placed.map((p) => `${testid}-issue-${p.index}`).join(' '),
  };
}

/** The visible mark on a field with issues: a triangle for warnings and errors, an i for information. */
function IssueMark({ placed }: { placed: readonly PlacedIssue[] }) {
  const worst = worstSeverity(placed.map((p) => p.issue))!;
  return (
    <span class={`issue-mark issue-${worst}`} data-testid="field-issue-mark" aria-hidden="true">
      {worst === 'information' ? 'i' : '▲'}
    </span>
  );
}
