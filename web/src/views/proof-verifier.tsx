/**
 * The proof verifier. The checks run here, in the browser, with the verifier `anchorline verify` runs (anchor/,
 * bundled into the console with its SHA-256 and Ed25519 code): the engine is never asked whether a bundle is valid.
 * It only hands out data when asked to fetch a bundle, a resource version, a raw message, the latest checkpoint or a
 * consistency proof, and a bundle pasted or loaded from a file is checked just the same.
 *
 * Both bundle formats verify: anchorline-proof/2 (a leaf, its inclusion proof in the one log and the signed
 * checkpoint; anchor/log-bundle.ts) and the older anchorline-proof/1 (a batch's audit path and signed header chain;
 * anchor/bundle.ts). verifyBundle tells them apart by their format member.
 */
import { useState } from 'preact/hooks';
import { bundleCheckpointText, parseLogCheckpoint, verifyBundle, verifyBundleForward, type LogProofBundle } from '../../../anchor/index.ts';
import { apiBytes, apiText, ApiError, query } from '../api.ts';
import { ErrorNote, Note, Panel, formatNumber, useAction } from '../components.tsx';
import { ConsistencyPanel } from './log-consistency.tsx';
import { isLogBundle, logTrustOnFormat1, pinnedPublicKeyCheck, prettyOrAsSent, readStrictJson, readTrust, readUtf8File, treeSize, type Trust } from './proof-inputs.ts';
import { VerdictView, verdictOf, type Verdict } from './proof-verdict.tsx';

/** What the verifier is given besides the bundle: parsed inputs, or why one is refused. */
type Inputs = { ok: true; bundle: unknown; resource: unknown; trust: Trust } | { ok: false; problem: string };

export function ProofVerifier({ params }: { params: URLSearchParams }) {
  const [type, setType] = useState(params.get('type') ?? 'Patient');
  const [id, setId] = useState(params.get('id') ?? '');
  const [versionId, setVersionId] = useState(params.get('vid') ?? '1');
  const [withResource, setWithResource] = useState(true);
  const [withRaw, setWithRaw] = useState(true);
  const [bundleText, setBundleText] = useState('');
  const [resourceText, setResourceText] = useState('');
  const [raw, setRaw] = useState<{ bytes: Uint8Array; from: string } | undefined>();
  const [pinnedKey, setPinnedKey] = useState('');
  const [logKey, setLogKey] = useState('');
  const [witnesses, setWitnesses] = useState('');
  const [witnessesRequired, setWitnessesRequired] = useState('');
  const [consistencyText, setConsistencyText] = useState('');
  const [verdict, setVerdict] = useState<Verdict | undefined>();
  const [inputProblem, setInputProblem] = useState<string | undefined>();
  const [pending, setPending] = useState<string | undefined>();

  const trustInput = { publicKey: pinnedKey, logKey, witnesses, witnessesRequired };
  const changed = (): void => setVerdict(undefined);
  const edit =
    (set: (value: string) => void) =>
    (event: Event): void => {
      set((event.target as HTMLInputElement | HTMLTextAreaElement).value);
      changed();
    };

  const fetcher = useAction(async () => {
    changed();
    setPending(undefined);
    const base = `${encodeURIComponent(type)}/${encodeURIComponent(id)}/_history/${encodeURIComponent(versionId)}`;
    try {
      // Text, parsed and shown losslessly: a decimal `5.40` in the resource must reach the hash as `5.40`.
      setBundleText(prettyOrAsSent(await apiText(`/proofs/${base}`)));
    } catch (error) {
      if (error instanceof ApiError && error.code === 'ANCHORLINE_ERR_PROOF_PENDING') {
        setPending(error.detail);
        return;
      }
      throw error;
    }
    if (withResource) setResourceText(prettyOrAsSent(await apiText(`/fhir/${base}`, { accept: 'application/fhir+json' })));
    if (withRaw) setRaw({ bytes: await apiBytes(`/proofs/${base}/source`), from: `source of ${type}/${id} version ${versionId}` });
  });

  const loadInto =
    (into: (text: string) => void) =>
    (event: Event): void => {
      void readUtf8File(event.target as HTMLInputElement).then((read) => {
        if (!read) return;
        into(read.ok ? read.text : '');
        if (!read.ok) setInputProblem(read.problem);
        changed();
      });
    };

  const readInputs = (): Inputs => {
    const bundle = readStrictJson(bundleText, 'The proof bundle');
    if (!bundle.ok) return bundle;
    let resource: unknown;
    if (resourceText.trim() !== '') {
      const parsed = readStrictJson(resourceText, 'The resource');
      if (!parsed.ok) return parsed;
      resource = parsed.value;
    }
    const trust = readTrust(trustInput);
    if (!trust.ok) return trust;
    return { ok: true, bundle: bundle.value, resource, trust: trust.trust };
  };

  const verifyOptions = (inputs: Extract<Inputs, { ok: true }>) => ({
    ...(inputs.resource !== undefined ? { resource: inputs.resource } : {}),
    ...(raw ? { raw: raw.bytes } : {}),
    ...inputs.trust.log,
  });

  /** Clears the last verdict and reads the inputs; a problem with them is shown, and undefined returned. */
  const freshInputs = (): Extract<ReturnType<typeof readInputs>, { ok: true }> | undefined => {
    setInputProblem(undefined);
    setVerdict(undefined);
    const inputs = readInputs();
    if (inputs.ok) return inputs;
    setInputProblem(inputs.problem);
    return undefined;
  };

  const verify = (): void => {
    const inputs = freshInputs();
    if (inputs === undefined) return;
    const result = verifyBundle(inputs.bundle, verifyOptions(inputs));
    const checks = [...result.checks];
    if (!isLogBundle(inputs.bundle)) checks.push(...logTrustOnFormat1(inputs.trust));
    if (inputs.trust.publicKey !== undefined) checks.push(pinnedPublicKeyCheck(inputs.bundle, checks[0]?.name === 'bundle-format' && checks[0].ok, inputs.trust.publicKey));
    setVerdict(verdictOf(checks));
  };

  /**
   * Brings a /2 bundle forward: fetches the latest checkpoint for its size, then the consistency proof from the
   * bundle's checkpoint to it, and verifies both here. The record is then shown to be in the latest tree without
   * fetching its bundle again, and the document is left in the consistency part for reading.
   */
  const forwarder = useAction(async () => {
    const inputs = freshInputs();
    if (inputs === undefined) return;
    if (!isLogBundle(inputs.bundle)) {
      setInputProblem('Only an anchorline-proof/2 bundle can be brought forward: an anchorline-proof/1 bundle has no checkpoint in the log.');
      return;
    }
    const note = (inputs.bundle as Partial<LogProofBundle>).checkpoint;
    const checkpoint = typeof note === 'string' ? parseLogCheckpoint(bundleCheckpointText(note) ?? '') : undefined;
    if (!checkpoint?.ok) {
      setInputProblem(`The bundle's checkpoint cannot be read${checkpoint ? `: ${checkpoint.reason}` : ''}; verify the bundle to see why.`);
      return;
    }
    const latestNote = await apiText('/log/checkpoint', { accept: 'text/plain' });
    // The checkpoint's second line is its tree size (C2SP tlog-checkpoint).
    const latestSize = treeSize(latestNote.split('\n')[1]);
    if (latestSize === undefined) throw new Error('the log answered something that is not a signed checkpoint');
    const documentText = await apiText(`/log/consistency${query({ old: checkpoint.value.size, new: latestSize })}`);
    setConsistencyText(prettyOrAsSent(documentText));
    const doc = readStrictJson(documentText, 'The consistency document from the log');
    if (!doc.ok) {
      setInputProblem(doc.problem);
      return;
    }
    const result = verifyBundleForward(inputs.bundle, doc.value, verifyOptions(inputs));
    const checks = [...result.checks];
    if (inputs.trust.publicKey !== undefined) checks.push(pinnedPublicKeyCheck(inputs.bundle, checks[0]?.name === 'bundle-format' && checks[0].ok, inputs.trust.publicKey));
    const subject =
      latestSize === checkpoint.value.size
        ? `The bundle's ${latestSize}-leaf checkpoint is the latest: nothing to bring forward past it.`
        : `Brought forward from the bundle's ${checkpoint.value.size}-leaf checkpoint to the latest, of ${latestSize} leaves.`;
    setVerdict(verdictOf(checks, subject));
  });

  return (
    <div class="view" data-testid="proof-verifier">
      <header class="view-head">
        <h1>Proof verifier</h1>
      </header>
      <Note kind="info" testid="verifier-local">
        Verification runs <strong>in this browser</strong>, with the same verifier as <code>anchorline verify</code>: the engine is never asked whether a bundle is valid. Fetching only
        downloads data; a bundle pasted or loaded from a file is checked the same way.
      </Note>
      <div class="grid-2">
        <Panel title="Fetch from the engine" testid="proof-fetch">
          <form
            class="form-grid"
            onSubmit={(event) => {
              event.preventDefault();
              void fetcher.run();
            }}
          >
            <label class="field">
              <span>Resource type</span>
              <input value={type} onInput={(event) => setType((event.target as HTMLInputElement).value)} data-testid="proof-type" required />
            </label>
            <label class="field">
              <span>Version</span>
              <input inputMode="numeric" value={versionId} onInput={(event) => setVersionId((event.target as HTMLInputElement).value)} data-testid="proof-version" required />
            </label>
            <label class="field span-2">
              <span>Resource id</span>
              <input value={id} onInput={(event) => setId((event.target as HTMLInputElement).value)} data-testid="proof-id" required />
            </label>
            <label class="check-field span-2">
              <input type="checkbox" checked={withResource} onChange={() => setWithResource(!withResource)} /> also fetch the resource version (checks resource-hash)
            </label>
            <label class="check-field span-2">
              <input type="checkbox" checked={withRaw} onChange={() => setWithRaw(!withRaw)} /> also fetch the raw message it came from (checks raw-hash)
            </label>
            <div class="button-row span-2">
              <button type="submit" class="button" disabled={fetcher.busy || id.trim() === ''} data-testid="proof-fetch-button">
                {fetcher.busy ? 'Fetching…' : 'Fetch'}
              </button>
            </div>
          </form>
          {pending ? (
            <Note kind="warn" testid="proof-pending">
              Not provable yet: {pending}
            </Note>
          ) : null}
          <ErrorNote error={fetcher.error} testid="proof-fetch-error" />
        </Panel>
        <Panel title="Trust" testid="proof-trust">
          <label class="field">
            <span>Pinned log key (verifier key), from a source you trust</span>
            <input value={logKey} spellcheck={false} onInput={edit(setLogKey)} placeholder="<origin>+<key id>+<base64>" data-testid="proof-log-key" />
          </label>
          <label class="field">
            <span>Or the bare Ed25519 public key (hex): the log key's, or an anchorline-proof/1 bundle's signer</span>
            <input value={pinnedKey} spellcheck={false} onInput={edit(setPinnedKey)} placeholder="64 hex digits" data-testid="proof-public-key" />
          </label>
          <label class="field">
            <span>Witness keys (cosignature/v1 verifier keys, one a line)</span>
            <textarea class="code-input" rows={3} spellcheck={false} value={witnesses} onInput={edit(setWitnesses)} aria-label="Witness keys" data-testid="proof-witnesses" />
          </label>
          <label class="field">
            <span>Cosignatures required from them</span>
            <input inputMode="numeric" value={witnessesRequired} placeholder="all of them" onInput={edit(setWitnessesRequired)} data-testid="proof-witnesses-required" />
          </label>
          <p class="muted small">
            A bundle names the key that signed it. Without a pinned key, a pass shows that the bundle is consistent, not that this engine made it. Witnesses are parties apart from the
            engine that cosign the checkpoints they have seen: a checkpoint they cosigned cannot be forked away from what they saw.
          </p>
        </Panel>
      </div>
      <div class="grid-2">
        <Panel title="Proof bundle (JSON)" testid="proof-bundle-panel" actions={<input type="file" accept="application/json,.json" aria-label="Load a proof bundle file" onChange={loadInto(setBundleText)} data-testid="proof-bundle-file" />}>
          <textarea class="code-input" rows={16} spellcheck={false} value={bundleText} onInput={edit(setBundleText)} aria-label="Proof bundle JSON" data-testid="proof-bundle" />
        </Panel>
        <Panel
          title="Resource version (JSON, optional)"
          testid="proof-resource-panel"
          actions={<input type="file" accept="application/json,application/fhir+json,.json" aria-label="Load a resource file" onChange={loadInto(setResourceText)} data-testid="proof-resource-file" />}
        >
          <textarea class="code-input" rows={16} spellcheck={false} value={resourceText} onInput={edit(setResourceText)} aria-label="Resource JSON" data-testid="proof-resource" />
        </Panel>
      </div>
      <Panel title="Raw message (optional)" testid="proof-raw-panel">
        <div class="toolbar">
          <input
            type="file"
            aria-label="Load the raw message file"
            onChange={(event) => {
              const file = (event.target as HTMLInputElement).files?.[0];
              if (file) void file.arrayBuffer().then((buffer) => { setRaw({ bytes: new Uint8Array(buffer), from: file.name }); changed(); });
            }}
            data-testid="proof-raw-file"
          />
          {raw ? (
            <span data-testid="proof-raw-loaded">
              {formatNumber(raw.bytes.length)} bytes ({raw.from}){' '}
              <button type="button" class="button button-small button-quiet" onClick={() => { setRaw(undefined); changed(); }} data-testid="proof-raw-clear">
                Clear
              </button>
            </span>
          ) : (
            <span class="muted small">none: raw-hash is not checked</span>
          )}
        </div>
      </Panel>
      <div class="button-row">
        <button type="button" class="button button-primary button-large" onClick={verify} disabled={bundleText.trim() === ''} data-testid="proof-verify">
          Verify in this browser
        </button>
        <button type="button" class="button button-large" onClick={() => void forwarder.run()} disabled={forwarder.busy || bundleText.trim() === ''} data-testid="proof-forward">
          {forwarder.busy ? 'Fetching the latest checkpoint…' : 'Bring forward to the latest checkpoint'}
        </button>
      </div>
      {inputProblem ? <Note kind="error" testid="proof-input-problem">{inputProblem}</Note> : null}
      <ErrorNote error={forwarder.error} testid="proof-forward-error" />
      {verdict ? <VerdictView verdict={verdict} testid="verify-verdict" /> : null}
      <ConsistencyPanel text={consistencyText} onText={setConsistencyText} trustInput={trustInput} />
    </div>
  );
}
