/**
 * The mapping tester: a message (pasted, or a stored one opened from the message browser), the config it selects,
 * that config's YAML to edit, the FHIR output with the deployed config and with the edit, what changes between
 * them, and deploying the edit to every engine. The dry run is the engine's (POST /admin/mappings/test), the same
 * code as `anchorline mapping test|diff`.
 */
import { useEffect, useState } from 'preact/hooks';
import { stringifyJson } from '../../../anchor/json.ts';
import { api } from '../api.ts';
import { ErrorNote, JsonBlock, Note, Panel, ShortHash, useAction } from '../components.tsx';
import { IssueTable } from '../issues.tsx';
import { href } from '../router.ts';
import type { DeployOutcome, MappingTestResult, MappingYaml, MessageDetail, MessageDiff, MessageMapping, ReprocessOutcome } from '../types.ts';

export function MappingTester({ params }: { params: URLSearchParams }) {
  const initialId = Number(params.get('messageId') ?? '') || undefined;
  const [storedId, setStoredId] = useState<number | undefined>(initialId);
  const [messageText, setMessageText] = useState('');
  const [configName, setConfigName] = useState('');
  const [yaml, setYaml] = useState('');
  const [deployedYaml, setDeployedYaml] = useState<MappingYaml | undefined>();
  const [result, setResult] = useState<MappingTestResult | undefined>();
  const [confirming, setConfirming] = useState(false);
  const [deployed, setDeployed] = useState<DeployOutcome | undefined>();
  const [requeued, setRequeued] = useState(false);

  const loadYaml = useAction(async (name: string) => {
    const loaded = await api<MappingYaml>(`/admin/mappings/${encodeURIComponent(name)}/yaml`);
    setDeployedYaml(loaded);
    setConfigName(loaded.name);
    setYaml(loaded.yaml);
  });

  const test = useAction(async (withConfig: boolean) => {
    setConfirming(false);
    const body: Record<string, unknown> = storedId !== undefined ? { messageId: storedId } : { message: messageText };
    if (withConfig && configName !== '' && yaml.trim() !== '') body.config = { name: configName, yaml };
    const answer = await api<MappingTestResult>('/admin/mappings/test', { body });
    setResult(answer);
    // The first run shows which config the message selects: load it to edit.
    if (answer.selected && configName === '') await loadYaml.run(answer.selected.name);
  });

  const opener = useAction(async (id: number) => {
    const message = await api<MessageDetail>(`/admin/messages/${id}`);
    setMessageText(message.text ?? '');
  });
  useEffect(() => {
    if (initialId === undefined) return;
    void opener.run(initialId).then(() => test.run(false));
  }, []);

  const deploy = useAction(async () => {
    setDeployed(await api<DeployOutcome>('/admin/mappings/deploy', { body: { name: configName, yaml } }));
    setConfirming(false);
    setDeployedYaml(undefined);
  });

  const reprocess = useAction(async () => {
    const outcome = await api<ReprocessOutcome>('/admin/messages/reprocess', { body: { ids: [storedId] } });
    setRequeued(outcome.requeued.length > 0);
  });

  const edited = deployedYaml !== undefined && yaml !== deployedYaml.yaml;
  const candidateReady = result?.candidate !== undefined && (result.problems ?? []).length === 0;
  return (
    <div class="view" data-testid="mapping-tester">
      <header class="view-head">
        <h1>Mapping tester</h1>
        <span class="muted small">Dry runs map in memory: nothing is stored until you deploy.</span>
      </header>
      <div class="grid-2 tester-inputs">
        <Panel
          title="Message"
          testid="tester-message"
          actions={
            storedId !== undefined ? (
              <a class="small" href={href(`/messages/${storedId}`)}>
                stored message #{storedId}
              </a>
            ) : null
          }
        >
          <label class="field">
            <span>{storedId !== undefined ? 'The stored message (its exact bytes are mapped; editing switches to the edited text)' : 'Paste an HL7 v2 message'}</span>
            <textarea
              class="code-input"
              rows={14}
              spellcheck={false}
              value={messageText}
              onInput={(event) => {
                setMessageText((event.target as HTMLTextAreaElement).value);
                setStoredId(undefined);
              }}
              placeholder={'MSH|^~\\&|EMR|SNUH|...\nPID|...'}
              data-testid="tester-message-input"
            />
          </label>
          <ErrorNote error={opener.error} />
          <div class="button-row">
            <button type="button" class="button button-primary" onClick={() => void test.run(yaml.trim() !== '')} disabled={test.busy || (storedId === undefined && messageText.trim() === '')} data-testid="tester-run">
              {test.busy ? 'Mapping…' : 'Run test'}
            </button>
          </div>
        </Panel>
        <Panel
          title={
            <>
              Config {configName ? <code data-testid="tester-config-name">{configName}</code> : null}
              {edited ? <span class="badge badge-queued">edited</span> : null}
            </>
          }
          testid="tester-config"
          actions={
            configName ? (
              <button type="button" class="button button-small" onClick={() => void loadYaml.run(configName)} disabled={loadYaml.busy} data-testid="tester-reload-yaml">
                Load deployed version
              </button>
            ) : null
          }
        >
          {deployedYaml ? (
            <p class="muted small">
              Deployed version <ShortHash hash={deployedYaml.sha256} /> ({deployedYaml.reason}
              {deployedYaml.fromFile ? ', the file as written' : ', rendered from the stored content'}).
            </p>
          ) : null}
          <textarea
            class="code-input"
            rows={14}
            spellcheck={false}
            value={yaml}
            onInput={(event) => setYaml((event.target as HTMLTextAreaElement).value)}
            placeholder="Run a test first: the config the message selects is loaded here."
            aria-label="Mapping config YAML"
            data-testid="tester-yaml"
          />
          <ErrorNote error={loadYaml.error} />
          <div class="button-row">
            <button type="button" class="button" onClick={() => void test.run(true)} disabled={test.busy || yaml.trim() === '' || (storedId === undefined && messageText.trim() === '')} data-testid="tester-run-edited">
              Test edited config
            </button>
            <button type="button" class="button button-danger" onClick={() => setConfirming(true)} disabled={!candidateReady || deploy.busy} data-testid="tester-deploy">
              Deploy…
            </button>
          </div>
          {confirming ? (
            <div class="confirm" role="alertdialog" aria-label="Confirm deployment" data-testid="tester-confirm">
              <p>
                Make this version of <code>{configName}</code> the active one in every engine and worker? It stays active when the unchanged file is loaded again; a change to the
                file replaces it.
              </p>
              <div class="button-row">
                <button type="button" class="button button-danger" onClick={() => void deploy.run()} disabled={deploy.busy} data-testid="tester-confirm-deploy" autoFocus>
                  Deploy {configName}
                </button>
                <button type="button" class="button button-quiet" onClick={() => setConfirming(false)}>
                  Cancel
                </button>
              </div>
            </div>
          ) : null}
          <ErrorNote error={deploy.error} testid="tester-deploy-error" />
          {deployed ? (
            <Note kind="ok" testid="tester-deployed">
              {deployed.changed ? 'Deployed' : 'Already active:'} <code>{deployed.name}</code> version <ShortHash hash={deployed.sha256} />. Engines and workers map with it within their poll
              interval (2 s by default).
              {storedId !== undefined ? (
                <>
                  {' '}
                  <button type="button" class="button button-small" onClick={() => void reprocess.run()} disabled={reprocess.busy || requeued} data-testid="tester-reprocess">
                    {requeued ? 'Sent back to be mapped' : `Reprocess message #${storedId}`}
                  </button>{' '}
                  {requeued ? <a href={href(`/messages/${storedId}`)}>follow it</a> : null}
                </>
              ) : null}
            </Note>
          ) : null}
          <ErrorNote error={reprocess.error} />
        </Panel>
      </div>

      <ErrorNote error={test.error} testid="tester-error" />
      {result ? (
        <>
          <Note kind="info" testid="tester-selected">
            {result.selected ? (
              <>
                The message selects config <code>{result.selected.name}</code> (deployed version <ShortHash hash={result.selected.sha256} />)
              </>
            ) : (
              'The message could not be read far enough to select a config.'
            )}
            {result.candidateConfig ? (
              <>
                ; the edited config is version <ShortHash hash={result.candidateConfig.sha256} />.
              </>
            ) : (
              '.'
            )}
          </Note>
          {result.problems && result.problems.length > 0 ? (
            <Note kind="error" testid="tester-problems">
              The edited config is invalid:
              <ul>
                {result.problems.map((p, i) => (
                  <li key={i}>
                    line {p.line}, column {p.column}: <code>{p.key}</code> {p.message}
                  </li>
                ))}
              </ul>
            </Note>
          ) : null}
          {result.diff ? <DiffView diff={result.diff} /> : null}
          <div class="grid-2">
            <Panel title="Output with the deployed config" testid="tester-deployed-output">
              <MappingOutput mapping={result.deployed} />
            </Panel>
            <Panel title="Output with the edited config" testid="tester-candidate-output">
              {result.candidate ? <MappingOutput mapping={result.candidate} /> : <p class="muted">Edit the config and choose “Test edited config”.</p>}
            </Panel>
          </div>
        </>
      ) : null}
    </div>
  );
}

/** One config's dry run: its error, or the resources it maps to; and, either way, what it could not map as sent. */
function MappingOutput({ mapping }: { mapping: MessageMapping }) {
  const issues = mapping.issues ?? [];
  const issueList =
    issues.length > 0 ? (
      <details class="issue-details" open data-testid="dry-run-issues">
        <summary>
          {issues.length} mapping {issues.length === 1 ? 'issue' : 'issues'}
        </summary>
        <IssueTable issues={issues} />
      </details>
    ) : null;
  if (mapping.error) {
    return (
      <>
        <div class="note note-error" data-testid="mapping-error" data-code={mapping.error.code}>
          <code class="code">{mapping.error.code}</code>
          {mapping.error.location ? <span> at {mapping.error.location}</span> : null}
          {mapping.error.detail ? <div>{mapping.error.detail}</div> : null}
        </div>
        {issueList}
      </>
    );
  }
  const resources = mapping.resources ?? [];
  return (
    <div data-testid="mapping-resources">
      <p class="muted small">
        {resources.length} {resources.length === 1 ? 'resource' : 'resources'}, valid FHIR R4
        {issues.length > 0 ? `; ${issues.length} mapping ${issues.length === 1 ? 'issue' : 'issues'}` : ''}
      </p>
      {issueList}
      {resources.map((resource, i) => (
        <JsonBlock
          key={i}
          value={resource}
          summary={
            <code data-testid="mapped-resource">
              {String(resource.resourceType)}/{String(resource.id)}
            </code>
          }
        />
      ))}
    </div>
  );
}

function DiffView({ diff }: { diff: MessageDiff }) {
  const outcome = (side: MessageDiff['from']): string => (side.error ? `${side.error.code}${side.error.location ? ` at ${side.error.location}` : ''}` : 'mapped');
  return (
    <Panel title="Deployed → edited" testid="tester-diff">
      <p data-testid="diff-status" data-status={diff.status}>
        {diff.status === 'unchanged' ? (
          'The edit changes nothing in this message’s output.'
        ) : diff.status === 'changed' ? (
          `${diff.changes.length} ${diff.changes.length === 1 ? 'change' : 'changes'} in the output.`
        ) : (
          <>
            <span class="diff-from">{outcome(diff.from)}</span> → <span class="diff-to">{outcome(diff.to)}</span>
          </>
        )}
      </p>
      {diff.changes.length > 0 ? (
        <table class="table diff-table">
          <thead>
            <tr>
              <th scope="col">path</th>
              <th scope="col">deployed</th>
              <th scope="col">edited</th>
            </tr>
          </thead>
          <tbody>
            {diff.changes.map((change, i) => (
              <tr key={i} data-testid="diff-change">
                <td>
                  <code>{change.path}</code>
                </td>
                <td class="diff-from">{'from' in change ? <code>{short(change.from)}</code> : <span class="muted">absent</span>}</td>
                <td class="diff-to">{'to' in change ? <code>{short(change.to)}</code> : <span class="muted">absent</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Panel>
  );
}

function short(value: unknown): string {
  const text = value === undefined ? undefined : stringifyJson(value);
  return text === undefined ? 'undefined' : text.length > 240 ? `${text.slice(0, 240)}…` : text;
}
