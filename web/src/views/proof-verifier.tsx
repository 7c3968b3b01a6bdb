/**
 * The proof verifier. The checks run here, in the browser, with the verifier `anchorline verify` runs
 * (anchor/bundle.ts, bundled into the console with its SHA-256 and Ed25519 code): the engine is never asked whether
 * a bundle is valid. It only hands out data when asked to fetch a bundle, a resource version or a raw message, and
 * a bundle pasted or loaded from a file is checked just the same.
 */
import { useState } from 'preact/hooks';
import { verifyBundle, type ProofBundle, type VerificationCheck } from '../../../anchor/bundle.ts';
import { parseStrictJson, StrictJsonError, stringifyJson } from '../../../anchor/json.ts';
import { apiBytes, apiText, ApiError } from '../api.ts';
import { ErrorNote, Note, Panel, formatNumber, useAction } from '../components.tsx';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

interface Verdict {
  ok: boolean;
  checks: VerificationCheck[];
  at: Date;
}

/** The pinned-key check of `anchorline verify --public-key`: the bundle must name the key the auditor trusts. */
function publicKeyCheck(bundle: unknown, formatOk: boolean, pinned: string): VerificationCheck {
  const stated = formatOk ? (bundle as ProofBundle).publicKey.toLowerCase() : undefined;
  if (stated === pinned) return { name: 'public-key', ok: true, detail: 'the bundle is signed by the pinned key' };
  return { name: 'public-key', ok: false, detail: stated === undefined ? 'not checked: the bundle is malformed' : `the bundle names key ${stated}, not the pinned key` };
}

/**
 * Text from the engine, indented for reading when it is strict JSON; as sent otherwise, so that verifying it shows
 * why it is refused rather than a lax re-reading of it (a repeated member would silently disappear).
 */
function prettyOrAsSent(text: string): string {
  try {
    return stringifyJson(parseStrictJson(text), 2);
  } catch {
    return text;
  }
}

/** Why a pasted or loaded text is refused, as `anchorline verify` says it; never quotes a value. */
function strictJsonProblem(error: unknown): string {
  if (!(error instanceof StrictJsonError)) return 'is not valid JSON';
  const kind = error.rule === 'syntax' ? 'is not valid JSON' : error.rule === 'too-deep' ? 'is refused' : 'is not valid I-JSON (RFC 7493)';
  return `${kind}: ${error.message}`;
}

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
  const [verdict, setVerdict] = useState<Verdict | undefined>();
  const [inputProblem, setInputProblem] = useState<string | undefined>();
  const [pending, setPending] = useState<string | undefined>();

  const changed = (): void => setVerdict(undefined);

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

  const readFile = (input: HTMLInputElement, into: (text: string) => void): void => {
    const file = input.files?.[0];
    if (!file) return;
    // Decoded strictly, as `anchorline verify` does: file.text() would replace invalid UTF-8 with U+FFFD unseen.
    void file.arrayBuffer().then((buffer) => {
      try {
        into(new TextDecoder('utf-8', { fatal: true }).decode(buffer));
      } catch {
        into('');
        setInputProblem(`The file ${file.name} is not valid UTF-8.`);
        return;
      }
      changed();
    });
  };

  const verify = (): void => {
    setInputProblem(undefined);
    setVerdict(undefined);
    let bundle: unknown;
    try {
      bundle = parseStrictJson(bundleText);
    } catch (error) {
      setInputProblem(`The proof bundle ${strictJsonProblem(error)}.`);
      return;
    }
    let resource: unknown;
    if (resourceText.trim() !== '') {
      try {
        resource = parseStrictJson(resourceText);
      } catch (error) {
        setInputProblem(`The resource ${strictJsonProblem(error)}.`);
        return;
      }
    }
    const pinned = pinnedKey.trim().toLowerCase();
    if (pinned !== '' && !HEX_KEY.test(pinned)) {
      setInputProblem('The pinned public key must be 64 hex digits.');
      return;
    }
    const result = verifyBundle(bundle, { ...(resource !== undefined ? { resource } : {}), ...(raw ? { raw: raw.bytes } : {}) });
    const checks = [...result.checks];
    if (pinned !== '') checks.push(publicKeyCheck(bundle, checks[0]?.name === 'bundle-format' && checks[0].ok, pinned));
    setVerdict({ ok: checks.every((check) => check.ok), checks, at: new Date() });
  };

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
            <span>Pinned Ed25519 public key (hex), from a source you trust</span>
            <input
              value={pinnedKey}
              spellcheck={false}
              onInput={(event) => {
                setPinnedKey((event.target as HTMLInputElement).value);
                changed();
              }}
              placeholder="64 hex digits"
              data-testid="proof-public-key"
            />
          </label>
          <p class="muted small">
            A bundle names the key that signed it. Without a pinned key, a pass shows that the bundle is consistent, not that this engine made it.
          </p>
        </Panel>
      </div>
      <div class="grid-2">
        <Panel title="Proof bundle (JSON)" testid="proof-bundle-panel" actions={<input type="file" accept="application/json,.json" aria-label="Load a proof bundle file" onChange={(event) => readFile(event.target as HTMLInputElement, setBundleText)} data-testid="proof-bundle-file" />}>
          <textarea
            class="code-input"
            rows={16}
            spellcheck={false}
            value={bundleText}
            onInput={(event) => {
              setBundleText((event.target as HTMLTextAreaElement).value);
              changed();
            }}
            aria-label="Proof bundle JSON"
            data-testid="proof-bundle"
          />
        </Panel>
        <Panel title="Resource version (JSON, optional)" testid="proof-resource-panel" actions={<input type="file" accept="application/json,application/fhir+json,.json" aria-label="Load a resource file" onChange={(event) => readFile(event.target as HTMLInputElement, setResourceText)} data-testid="proof-resource-file" />}>
          <textarea
            class="code-input"
            rows={16}
            spellcheck={false}
            value={resourceText}
            onInput={(event) => {
              setResourceText((event.target as HTMLTextAreaElement).value);
              changed();
            }}
            aria-label="Resource JSON"
            data-testid="proof-resource"
          />
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
              <button type="button" class="button button-small button-quiet" onClick={() => { setRaw(undefined); changed(); }}>
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
      </div>
      {inputProblem ? <Note kind="error" testid="proof-input-problem">{inputProblem}</Note> : null}
      {verdict ? <VerdictView verdict={verdict} /> : null}
    </div>
  );
}

function VerdictView({ verdict }: { verdict: Verdict }) {
  const failed = verdict.checks.filter((check) => !check.ok);
  return (
    <section class={`verdict ${verdict.ok ? 'verdict-ok' : 'verdict-failed'}`} aria-live="polite" data-testid="verify-verdict" data-ok={String(verdict.ok)}>
      <h2>{verdict.ok ? '✔ Verified in this browser' : '✘ Not verified'}</h2>
      <p>
        {verdict.ok
          ? `All ${verdict.checks.length} checks passed, computed here at ${verdict.at.toLocaleTimeString()}.`
          : `${failed.length} of ${verdict.checks.length} checks failed: ${failed.map((check) => check.name).join(', ')}.`}
      </p>
      <ul class="checks">
        {verdict.checks.map((check) => (
          <li key={check.name} class={check.ok ? 'check-pass' : 'check-fail'} data-testid="check-row" data-check={check.name} data-ok={String(check.ok)}>
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
