/**
 * The console's proof verifier on the one-log formats, in a real headless Chromium (Debian's, driven by
 * playwright-core) against a real engine with one witness: an anchorline-proof/2 bundle fetched for a Patient
 * version verifies in the browser with the pinned log key and the witness's cosignature; one base64 character
 * changed in its inclusion proof fails `inclusion`; after a second message the log has grown, and a consistency
 * document between the two checkpoints, and the bundle brought forward to the latest checkpoint, verify too. An
 * anchorline-proof/1 bundle (the fixture `anchorline verify` is tested with) still verifies as before.
 *
 * Screenshots of each step land in .tmp/artifacts/proof-verifier-log/.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleCheckpointText, bytesToHex, LOG_CHECK_NAMES } from '../../anchor/index.ts';
import { ed25519Cosigner, formatCosignerKey, parseVerifierKey, signNote } from '../../anchor/log/index.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, TEST_API_KEY, type TestEngine } from '../support/engine.ts';

const ARTIFACTS = fileURLToPath(new URL('../../.tmp/artifacts/proof-verifier-log/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/anchor/bundle/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WITNESS = 'witness.example';
const witnessSeed = new Uint8Array(randomBytes(32));
const witnessKey = formatCosignerKey(WITNESS, ed25519.getPublicKey(witnessSeed));
/** A witness the engine knows nothing of: it has cosigned nothing. */
const strangerKey = formatCosignerKey('stranger.example', ed25519.getPublicKey(new Uint8Array(randomBytes(32))));

let t: TestEngine;
let browser: Browser;
let page: Page;

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  // One witness, so proof bundles are made against the newest checkpoint it cosigned (anchor.witnessQuorum, default
  // all witnesses) once one covers the record.
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200, witnesses: [witnessKey] } } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.setDefaultTimeout(20_000);
});

afterAll(async () => {
  await browser?.close();
  await t?.destroy();
});

async function json(url: string): Promise<any> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return response.status === 200 ? response.json() : undefined;
}

async function latestCheckpoint(): Promise<string> {
  const response = await fetch(`${t.httpUrl}/log/checkpoint`);
  expect(response.status).toBe(200);
  return response.text();
}

function sizeOf(note: string): number {
  return Number(note.split('\n')[1]);
}

/**
 * The latest checkpoint once the log has stopped growing. Every read of patient data is audited, and each audit
 * event is a leaf, so the log grows for a moment after the test's own requests.
 */
async function settledCheckpoint(): Promise<string> {
  let previous = '';
  return eventually(async () => {
    const note = await latestCheckpoint();
    const settled = note === previous;
    previous = note;
    if (settled) return note;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    return undefined;
  }, 30_000, 'the log to stop growing');
}

/** What the witness does: cosigns a checkpoint and hands the cosignature to the log. */
async function cosign(note: string): Promise<void> {
  const text = bundleCheckpointText(note)!;
  const response = await fetch(`${t.httpUrl}/log/cosignature`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: signNote(text, [ed25519Cosigner(WITNESS, witnessSeed)]) });
  expect(response.status).toBe(200);
  expect(((await response.json()) as { stored: number }).stored).toBe(1);
}

/** Every row of `name` in the verdict (a bundle brought forward reports log-key for both its parts). */
async function checkOk(verdict: Locator, name: string): Promise<boolean[]> {
  const rows = verdict.locator(`[data-testid="check-row"][data-check="${name}"]`);
  const count = await rows.count();
  const states: boolean[] = [];
  for (let i = 0; i < count; i++) states.push((await rows.nth(i).getAttribute('data-ok')) === 'true');
  return states;
}

async function verdictNames(verdict: Locator): Promise<string[]> {
  return verdict.locator('[data-testid="check-row"]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-check') ?? ''));
}

describe('the proof verifier on the one log', () => {
  it('verifies /2 bundles, consistency between checkpoints and a bundle brought forward, in the browser', async () => {
    const mllp = await MllpTestClient.connect(t.mllpPort);
    expect(await mllp.request(adtMessage({ controlId: 'VERIFIER-1', mrn: 'PV1001', family: 'Seo', given: 'Yuna' }))).toContain('MSA|AA');
    const patient = await eventually(async () => (await json('/fhir/Patient?identifier=PV1001'))?.entry?.[0]?.resource as { id: string } | undefined, 20_000, 'the Patient');
    const proofUrl = `/proofs/Patient/${patient.id}/_history/1`;
    const first = await eventually(async () => json(proofUrl), 30_000, 'the Patient to be in a checkpoint');
    expect(first.format).toBe('anchorline-proof/2');
    const logKey = first.logKey as string;
    expect((await json('/log')).logKey).toBe(logKey);
    const parsedLogKey = parseVerifierKey(logKey);
    expect(parsedLogKey.ok).toBe(true);
    const logPublicKey = parsedLogKey.ok ? bytesToHex(parsedLogKey.value.publicKey) : '';

    // The witness cosigns the checkpoint now latest, which covers the Patient: from then on its bundle is made
    // against that checkpoint.
    const cosigned = await settledCheckpoint();
    await cosign(cosigned);
    const oldSize = sizeOf(cosigned);

    // 1. Log in, open the verifier for the Patient's first version.
    await page.goto(`${t.httpUrl}/console/`);
    await page.getByTestId('login-key').fill(TEST_API_KEY);
    await page.getByTestId('login-key').press('Enter');
    await page.getByTestId('dashboard').waitFor();
    await page.goto(`${t.httpUrl}/console/#/proofs?type=Patient&id=${encodeURIComponent(patient.id)}&vid=1`);
    await page.getByTestId('proof-verifier').waitFor();
    const verdict = page.getByTestId('verify-verdict');

    // 2. An anchorline-proof/1 bundle still verifies as before, by its own checks and its signer's bare key; a log
    // key pinned beside it is reported as not checked rather than passed over.
    const legacyBundle = await readFile(path.join(FIXTURES, 'good.bundle.json'), 'utf8');
    const legacyKey = (JSON.parse(legacyBundle) as { publicKey: string }).publicKey;
    await page.getByTestId('proof-bundle').fill(legacyBundle);
    await page.getByTestId('proof-resource').fill(await readFile(path.join(FIXTURES, 'good.resource.json'), 'utf8'));
    await page.getByTestId('proof-public-key').fill(legacyKey);
    await page.getByTestId('proof-verify').click();
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-ok')).toBe('true');
    expect(await verdictNames(verdict)).toEqual(['bundle-format', 'leaf-hash', 'resource-hash', 'inclusion', 'header-hash', 'header-signature', 'header-chain', 'anchor', 'public-key']);
    await shot('01-proof-1-verified');
    await page.getByTestId('proof-log-key').fill(logKey);
    await page.getByTestId('proof-verify').click();
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-ok')).toBe('false');
    expect(await checkOk(verdict, 'log-key')).toEqual([false]);

    // 3. The /2 bundle, fetched as data with its resource and raw message, verified here with the pinned log key,
    // its bare key, and the witness's cosignature required.
    await page.getByTestId('proof-bundle').fill('');
    await page.getByTestId('proof-fetch-button').click();
    await expect.poll(async () => (await page.getByTestId('proof-bundle').inputValue()).includes('anchorline-proof/2'), { timeout: 20_000 }).toBe(true);
    await page.getByTestId('proof-raw-loaded').waitFor();
    await expect.poll(async () => (await page.getByTestId('proof-resource').inputValue()).includes(patient.id), { timeout: 20_000 }).toBe(true);
    const genuine = await page.getByTestId('proof-bundle').inputValue();
    const bundle = JSON.parse(genuine) as { checkpoint: string; inclusionProof: string[] };
    expect(sizeOf(bundle.checkpoint)).toBe(oldSize);
    expect(bundle.checkpoint).toContain(`— ${WITNESS} `);
    await page.getByTestId('proof-public-key').fill(logPublicKey);
    await page.getByTestId('proof-witnesses').fill(witnessKey);
    await page.getByTestId('proof-witnesses-required').fill('1');

    // Verifying asks the engine nothing.
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.getByTestId('proof-verify').click();
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-ok')).toBe('true');
    expect(await verdict.textContent()).toContain('Verified in this browser');
    expect(await verdictNames(verdict)).toEqual([...LOG_CHECK_NAMES, 'public-key']);
    const details = await verdict.locator('[data-testid="check-row"] .check-detail').allTextContents();
    expect(details.every((detail) => detail.length > 0)).toBe(true);
    expect(await verdict.locator('[data-check="inclusion"] .check-detail').textContent()).toContain(`${oldSize}-leaf checkpoint`);
    expect(await verdict.locator('[data-check="cosignatures"] .check-detail').textContent()).toContain(`${WITNESS}+`);
    expect(requests).toEqual([]);
    await shot('02-proof-2-verified');

    // A witness that cosigned nothing, required: cosignatures fails, and only it.
    await page.getByTestId('proof-witnesses').fill(strangerKey);
    await page.getByTestId('proof-verify').click();
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-ok')).toBe('false');
    expect(await checkOk(verdict, 'cosignatures')).toEqual([false]);
    expect(await checkOk(verdict, 'checkpoint')).toEqual([true]);
    await page.getByTestId('proof-witnesses').fill(witnessKey);

    // 4. Tampered: one base64 character of an inclusion proof hash changed. The bundle is well formed and its
    // checkpoint genuine, but the path no longer leads to the checkpoint's root.
    expect(bundle.inclusionProof.length).toBeGreaterThan(0);
    const hash = bundle.inclusionProof[0]!;
    const tampered = { ...JSON.parse(genuine), inclusionProof: [(hash[0] === 'A' ? 'B' : 'A') + hash.slice(1), ...bundle.inclusionProof.slice(1)] };
    await page.getByTestId('proof-bundle').fill(JSON.stringify(tampered, null, 2));
    await page.getByTestId('proof-verify').click();
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-ok')).toBe('false');
    expect(await checkOk(verdict, 'inclusion')).toEqual([false]);
    for (const name of ['bundle-format', 'leaf-hash', 'resource-hash', 'raw-hash', 'checkpoint', 'cosignatures', 'log-key']) {
      expect(await checkOk(verdict, name), name).toEqual([true]);
    }
    expect(await verdict.textContent()).toContain('Not verified');
    expect(requests).toEqual([]);
    await shot('03-proof-2-tampered');
    await page.getByTestId('proof-bundle').fill(genuine);

    // 5. A second message: the log grows past the bundle's checkpoint, and the witness cosigns the new latest one.
    expect(await mllp.request(adtMessage({ controlId: 'VERIFIER-2', mrn: 'PV1002', family: 'Seo', given: 'Jiho' }))).toContain('MSA|AA');
    await mllp.close();
    await eventually(async () => (await json('/fhir/Patient?identifier=PV1002'))?.entry?.[0]?.resource, 20_000, 'the second Patient');
    await eventually(async () => sizeOf(await latestCheckpoint()) > oldSize, 30_000, 'a newer checkpoint');
    const newer = await settledCheckpoint();
    const newSize = sizeOf(newer);
    expect(newSize).toBeGreaterThan(oldSize);
    await cosign(newer);

    // 6. The consistency part: the document for the two sizes, fetched from the log and verified here.
    await page.getByTestId('consistency-old').fill(String(oldSize));
    await page.getByTestId('consistency-new').fill(String(newSize));
    await page.getByTestId('consistency-fetch-button').click();
    await expect.poll(async () => (await page.getByTestId('consistency-document').inputValue()).includes('anchorline-consistency/1'), { timeout: 20_000 }).toBe(true);
    const documentText = await page.getByTestId('consistency-document').inputValue();
    const consistencyVerdict = page.getByTestId('consistency-verdict');
    requests.length = 0;
    await page.getByTestId('consistency-verify').click();
    await consistencyVerdict.waitFor();
    expect(await consistencyVerdict.getAttribute('data-ok')).toBe('true');
    expect(await verdictNames(consistencyVerdict)).toEqual(['consistency-format', 'old-checkpoint', 'new-checkpoint', 'consistency', 'cosignatures', 'log-key', 'public-key']);
    expect(await consistencyVerdict.locator('[data-check="consistency"] .check-detail').textContent()).toContain(`the ${oldSize}-leaf tree is a prefix of the ${newSize}-leaf tree`);
    expect(requests).toEqual([]);
    await shot('04-consistency-verified');

    // A pasted document whose proof is forged is refused by name.
    const forgedDocument = JSON.parse(documentText) as { proof: string[] };
    expect(forgedDocument.proof.length).toBeGreaterThan(0);
    forgedDocument.proof[0] = (forgedDocument.proof[0]![0] === 'A' ? 'B' : 'A') + forgedDocument.proof[0]!.slice(1);
    await page.getByTestId('consistency-document').fill(JSON.stringify(forgedDocument, null, 2));
    await page.getByTestId('consistency-verify').click();
    await consistencyVerdict.waitFor();
    expect(await consistencyVerdict.getAttribute('data-ok')).toBe('false');
    expect(await checkOk(consistencyVerdict, 'consistency')).toEqual([false]);
    expect(await checkOk(consistencyVerdict, 'new-checkpoint')).toEqual([true]);

    // 7. Bring the bundle forward: the browser fetches the latest checkpoint and the consistency proof to it, and
    // shows the record in the latest tree without fetching its bundle again.
    requests.length = 0;
    await page.getByTestId('proof-forward').click();
    await verdict.waitFor();
    await expect.poll(() => verdict.getAttribute('data-ok'), { timeout: 20_000 }).toBe('true');
    expect(await checkOk(verdict, 'forward')).toEqual([true]);
    expect(await verdict.locator('[data-check="forward"] .check-detail').textContent()).toContain(`in the ${newSize}-leaf checkpoint too`);
    for (const name of ['inclusion', 'checkpoint', 'consistency', 'new-checkpoint', 'cosignatures']) expect(await checkOk(verdict, name), name).toEqual([true]);
    expect(await checkOk(verdict, 'log-key')).toEqual([true, true]);
    expect(await page.getByTestId('verify-verdict-subject').textContent()).toContain(`from the bundle's ${oldSize}-leaf checkpoint to the latest, of ${newSize} leaves`);
    expect(await page.getByTestId('consistency-document').inputValue()).toContain('anchorline-consistency/1');
    // Only data was fetched: the latest checkpoint and the proof, nothing about the record.
    expect(requests.map((url) => new URL(url).pathname).sort()).toEqual(['/log/checkpoint', '/log/consistency']);
    await shot('05-brought-forward');
  });
});
