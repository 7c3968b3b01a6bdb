/**
 * The consistency part of the proof verifier: that a newer signed checkpoint extends an older one, so the log only
 * grew between them (an anchorline-consistency/1 document, checked here with verifyConsistencyDocument as
 * `anchorline verify --consistency` does). The document is pasted, loaded from a file, or fetched from the log's
 * public GET /log/consistency: it holds checkpoints and hashes, no patient data, and the engine is only asked for
 * data, never for a verdict.
 */
import { useEffect, useState } from 'preact/hooks';
import { verifyConsistencyDocument } from '../../../anchor/index.ts';
import { apiText, query } from '../api.ts';
import { ErrorNote, Note, Panel, useAction } from '../components.tsx';
import { pinnedPublicKeyCheck, prettyOrAsSent, readStrictJson, readTrust, readUtf8File, treeSize, type TrustInput } from './proof-inputs.ts';
import { VerdictView, verdictOf, type Verdict } from './proof-verdict.tsx';

export interface ConsistencyPanelProps {
  /** The document as text; held by the verifier, which also fills it when it brings a bundle forward. */
  text: string;
  onText: (text: string) => void;
  trustInput: TrustInput;
}

export function ConsistencyPanel({ text, onText, trustInput }: ConsistencyPanelProps) {
  const [oldSize, setOldSize] = useState('');
  const [newSize, setNewSize] = useState('');
  const [verdict, setVerdict] = useState<Verdict | undefined>();
  const [problem, setProblem] = useState<string | undefined>();

  // A verdict stands for the document and the keys it was computed with; any change of either withdraws it.
  useEffect(() => setVerdict(undefined), [text, trustInput.publicKey, trustInput.logKey, trustInput.witnesses, trustInput.witnessesRequired]);

  const fetcher = useAction(async () => {
    setProblem(undefined);
    const older = treeSize(oldSize.trim());
    const newer = newSize.trim() === '' ? undefined : treeSize(newSize.trim());
    if (older === undefined || older < 1 || (newSize.trim() !== '' && (newer === undefined || newer < 1))) {
      setProblem('Tree sizes are whole numbers from 1; leave the newer one empty for the latest checkpoint.');
      return;
    }
    onText(prettyOrAsSent(await apiText(`/log/consistency${query({ old: older, new: newer })}`)));
  });

  const verify = (): void => {
    setProblem(undefined);
    setVerdict(undefined);
    const doc = readStrictJson(text, 'The consistency document');
    if (!doc.ok) return setProblem(doc.problem);
    const trust = readTrust(trustInput);
    if (!trust.ok) return setProblem(trust.problem);
    const result = verifyConsistencyDocument(doc.value, trust.trust.log);
    const checks = [...result.checks];
    if (trust.trust.publicKey !== undefined) checks.push(pinnedPublicKeyCheck(doc.value, checks[0]?.name === 'consistency-format' && checks[0].ok, trust.trust.publicKey));
    setVerdict(verdictOf(checks, result.old && result.new ? `The ${result.old.size}-leaf checkpoint and the ${result.new.size}-leaf checkpoint.` : undefined));
  };

  return (
    <Panel
      title="Consistency of two checkpoints"
      testid="consistency-panel"
      actions={
        <input
          type="file"
          accept="application/json,.json"
          aria-label="Load a consistency document file"
          onChange={(event) =>
            void readUtf8File(event.target as HTMLInputElement).then((read) => {
              if (!read) return;
              onText(read.ok ? read.text : '');
              setProblem(read.ok ? undefined : read.problem);
            })
          }
          data-testid="consistency-file"
        />
      }
    >
      <p class="muted small">
        Shows that the log only grew: the older checkpoint's tree is a prefix of the newer one's, both signed by the log key. Paste an <code>anchorline-consistency/1</code> document, or fetch one
        for two checkpoint sizes from the log (checkpoints and hashes only, no patient data). The keys in Trust apply.
      </p>
      <form
        class="form-grid"
        onSubmit={(event) => {
          event.preventDefault();
          void fetcher.run();
        }}
      >
        <label class="field">
          <span>Older checkpoint (tree size)</span>
          <input inputMode="numeric" value={oldSize} onInput={(event) => setOldSize((event.target as HTMLInputElement).value)} data-testid="consistency-old" required />
        </label>
        <label class="field">
          <span>Newer checkpoint (tree size)</span>
          <input inputMode="numeric" value={newSize} placeholder="the latest" onInput={(event) => setNewSize((event.target as HTMLInputElement).value)} data-testid="consistency-new" />
        </label>
        <div class="button-row span-2">
          <button type="submit" class="button" disabled={fetcher.busy || oldSize.trim() === ''} data-testid="consistency-fetch-button">
            {fetcher.busy ? 'Fetching…' : 'Fetch from the log'}
          </button>
        </div>
      </form>
      <ErrorNote error={fetcher.error} testid="consistency-fetch-error" />
      <textarea
        class="code-input"
        rows={12}
        spellcheck={false}
        value={text}
        onInput={(event) => onText((event.target as HTMLTextAreaElement).value)}
        aria-label="Consistency document JSON"
        data-testid="consistency-document"
      />
      <div class="button-row">
        <button type="button" class="button button-primary" onClick={verify} disabled={text.trim() === ''} data-testid="consistency-verify">
          Verify consistency in this browser
        </button>
      </div>
      {problem ? <Note kind="error" testid="consistency-input-problem">{problem}</Note> : null}
      {verdict ? <VerdictView verdict={verdict} testid="consistency-verdict" /> : null}
    </Panel>
  );
}
