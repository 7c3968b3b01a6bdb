/**
 * The web console end to end, in a real headless Chromium (Debian's, driven by playwright-core) against a real
 * engine: an operator logs in, watches messages arrive on the dashboard, finds a message that failed to map in the
 * dead letters, and a message mapped with a warning (a sex code outside HL7 table 0001) through the list's filter,
 * sees that warning at its field in the message and in the mapping tester, opens the failed message in the mapping
 * tester, fixes the sender's config, sees the difference, deploys it, reprocesses the message and sees its Patient,
 * then verifies that Patient's proof bundle in the browser, and sees a tampered bundle fail the check that names
 * what was changed.
 *
 * Screenshots of each step land in .tmp/artifacts/console/.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, TEST_API_KEY, type TestEngine } from '../support/engine.ts';
import { LEGACY_CONFIG_NAME, LEGACY_CONFIG_YAML, LEGACY_FIELDS_FIX, legacyAdt } from './legacy-sender.ts';

const ARTIFACTS = fileURLToPath(new URL('../../.tmp/artifacts/console/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FAILING_CONTROL_ID = 'MW-STORY-1';
/** Sent with PID-8 administrative sex `X`, not an HL7 table 0001 code: mapped, with the gender unknown and a warning. */
const WARNED_CONTROL_ID = 'STORY-WARN';

let t: TestEngine;
let configDir: string;
let browser: Browser;
let page: Page;

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  configDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-console-configs-'));
  await writeFile(path.join(configDir, `${LEGACY_CONFIG_NAME}.yaml`), LEGACY_CONFIG_YAML);
  t = await startTestEngine({ overrides: { mapping: { configDir, pollIntervalMs: 200 }, anchor: { closeAfterMs: 300 } } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.setDefaultTimeout(20_000);
});

afterAll(async () => {
  await browser?.close();
  await t?.destroy();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

describe('the operator console', () => {
  it('takes an operator from a failed message to a fixed config, a mapped Patient and a proof verified in the browser', async () => {
    // Static files are public; everything behind them needs the key.
    const index = await fetch(`${t.httpUrl}/console/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");

    // 1. Log in: / leads to the console; a wrong key is refused; the right one, submitted with Enter, is accepted.
    await page.goto(`${t.httpUrl}/`);
    await expect.poll(() => page.url(), { timeout: 15_000 }).toContain('/console/');
    await page.getByTestId('login-key').fill('not-a-key');
    await page.getByTestId('login-submit').click();
    await expect.poll(() => page.getByTestId('login-error').textContent(), { timeout: 15_000 }).toContain('does not know this key');
    await shot('01-login');
    await page.getByTestId('login-key').fill(TEST_API_KEY);
    await page.getByTestId('login-key').press('Enter');
    await page.getByTestId('dashboard').waitFor();

    // 2. Messages flow in over MLLP: five that map, one that maps with a warning, and one from the legacy sender
    // that fails.
    const mllp = await MllpTestClient.connect(t.mllpPort);
    for (let i = 1; i <= 5; i++) {
      expect(await mllp.request(adtMessage({ controlId: `STORY-${i}`, mrn: `S${1000 + i}`, family: 'Kim', given: `Minji${i}` }))).toContain('MSA|AA');
    }
    expect(await mllp.request(adtMessage({ controlId: WARNED_CONTROL_ID, mrn: 'S2001', family: 'Park', given: 'Jiwoo', gender: 'X' }))).toContain('MSA|AA');
    expect(await mllp.request(legacyAdt(FAILING_CONTROL_ID, 'MW-77120'))).toContain('MSA|AA');
    await mllp.close();

    const statsServed = (await fetch(`${t.httpUrl}/admin/stats`, { headers: authHeaders() })).status === 200;
    await expect.poll(async () => Number((await page.getByTestId('count-done-value').textContent())?.replace(/\D/g, '')), { timeout: 20_000 }).toBeGreaterThanOrEqual(5);
    await expect.poll(async () => Number((await page.getByTestId('count-failed-value').textContent())?.replace(/\D/g, '')), { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    // The message mapped with a warning is done, and counted apart from the failures.
    await expect.poll(async () => Number((await page.getByTestId('count-warnings-value').textContent())?.replace(/\D/g, '')), { timeout: 20_000 }).toBe(1);
    if (statsServed) {
      await expect.poll(async () => Number((await page.getByTestId('received-minute-value').textContent())?.replace(/\D/g, '')), { timeout: 15_000 }).toBeGreaterThanOrEqual(7);
      await expect.poll(async () => page.getByTestId('errors-by-code').textContent(), { timeout: 15_000 }).toContain('ANCHORLINE_ERR_MAPPING_FATAL_ISSUE');
      await expect.poll(async () => Number((await page.getByTestId('throughput-done').textContent())?.replace(/\D/g, '')), { timeout: 15_000 }).toBeGreaterThanOrEqual(5);
    } else {
      await page.getByTestId('stats-unavailable').waitFor();
    }
    await shot('02-dashboard');

    // 3. The failed message is in the dead letters, with its error code.
    await page.getByTestId('nav-dead-letters').click();
    const row = page.locator(`[data-testid="message-row"][data-control-id="${FAILING_CONTROL_ID}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('ANCHORLINE_ERR_MAPPING_FATAL_ISSUE');
    expect(await page.getByTestId('message-row').count()).toBe(1);
    await shot('03-dead-letters');

    // 4. The messages mapped with warnings: the filter finds the one, and the list marks it.
    await page.getByTestId('nav-messages').click();
    await page.getByTestId('filter-warnings').check();
    await page.getByTestId('search').click();
    await expect.poll(() => page.url(), { timeout: 15_000 }).toContain('warnings=true');
    const warnedRow = page.locator(`[data-testid="message-row"][data-control-id="${WARNED_CONTROL_ID}"]`);
    await warnedRow.waitFor();
    await expect.poll(() => page.getByTestId('message-row').count(), { timeout: 15_000 }).toBe(1);
    expect(await warnedRow.getAttribute('data-warnings')).toBe('1');
    expect(await warnedRow.getByTestId('warnings-mark').textContent()).toContain('1 warning');
    await shot('04-warnings-filter');

    // 5. Its view: the warning is marked at PID-8, with its code on hover and beside the segment, and listed with
    // the value as sent.
    await warnedRow.getByTestId('message-link').click();
    await page.locator('[data-testid="message-detail"][data-state="done"]').waitFor();
    expect(await page.getByTestId('message-warnings').textContent()).toContain('1 warning');
    const pid8 = page.locator('[data-testid="segments"] [data-field="PID-8"]');
    expect(await pid8.getAttribute('class')).toContain('field-issue');
    expect(await pid8.getAttribute('data-issue-codes')).toContain('ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE');
    expect(await pid8.getAttribute('data-issue-severity')).toBe('warning');
    expect(await pid8.getAttribute('title')).toMatch(/^PID-8\nwarning ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE: /);
    await pid8.getByTestId('field-issue-mark').waitFor();
    const besidePid = page.locator('[data-testid="segments"] [data-segment="PID"] [data-testid="segment-issue"][data-location="PID-8"]');
    expect(await besidePid.textContent()).toContain('ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE');
    // No other field is marked for it.
    expect(await page.locator('[data-testid="segments"] [data-issue-codes~="ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE"]').count()).toBe(1);
    const issueRow = page.locator('[data-testid="message-issues"] [data-testid="mapping-issue"][data-location="PID-8"]');
    expect(await issueRow.getAttribute('data-code')).toBe('ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE');
    expect(await issueRow.getAttribute('data-severity')).toBe('warning');
    expect(await issueRow.getByTestId('issue-value').textContent()).toBe('X');
    await pid8.hover();
    await shot('05-message-warnings');

    // 6. The mapping tester's dry run shows the same issue.
    await page.getByTestId('open-in-tester').click();
    await page.locator('[data-testid="tester-deployed-output"] [data-testid="mapping-issue"][data-location="PID-8"][data-code="ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE"]').waitFor();
    await page.locator('[data-testid="tester-deployed-output"] [data-testid="mapped-resource"]', { hasText: 'Patient/' }).waitFor();
    await shot('06-tester-warnings');

    // The message browser finds it by sender too.
    await page.getByTestId('nav-messages').click();
    await page.getByTestId('filter-sender').fill('LEGACYADT');
    await page.getByTestId('search').click();
    await expect.poll(() => page.getByTestId('message-row').count(), { timeout: 15_000 }).toBe(1);
    await row.getByTestId('message-link').click();

    // 7. Its detail: the error, and the message segment by segment; PID-3 is empty, the MRN is in PID-2.
    await page.getByTestId('message-detail').waitFor();
    expect(await page.getByTestId('message-error').textContent()).toContain('PID-3');
    expect(await page.locator('[data-testid="segments"] [data-field="PID-2"]').textContent()).toContain('MW-77120');
    expect(await page.locator('[data-testid="segments"] [data-field="PID-3"]').getAttribute('class')).toContain('field-empty');
    const messageUrl = page.url();
    await shot('07-message-detail');

    // 8. The mapping tester: the message selects the legacy config, which fails at PID-3 on the issue it makes
    // fatal; its YAML is loaded.
    await page.getByTestId('open-in-tester').click();
    await expect.poll(() => page.getByTestId('tester-selected').textContent(), { timeout: 15_000 }).toContain(LEGACY_CONFIG_NAME);
    await page.locator('[data-testid="tester-deployed-output"] [data-testid="mapping-error"][data-code="ANCHORLINE_ERR_MAPPING_FATAL_ISSUE"]').waitFor();
    await page.locator('[data-testid="tester-deployed-output"] [data-testid="mapping-issue"][data-location="PID-3"][data-code="ANCHORLINE_ISSUE_IDENTIFIER_FALLBACK"]').waitFor();
    await expect.poll(() => page.getByTestId('tester-yaml').inputValue(), { timeout: 15_000 }).toBe(LEGACY_CONFIG_YAML);
    await shot('08-tester-failing');

    // 9. Edit the config to read PID-2 and test it: the Patient maps, and the diff says so.
    await page.getByTestId('tester-yaml').fill(LEGACY_CONFIG_YAML + LEGACY_FIELDS_FIX);
    await page.getByTestId('tester-run-edited').click();
    await page.locator('[data-testid="tester-candidate-output"] [data-testid="mapped-resource"]', { hasText: 'Patient/' }).waitFor();
    const diff = page.getByTestId('diff-status');
    expect(await diff.getAttribute('data-status')).toBe('failed');
    expect(await diff.textContent()).toMatch(/ANCHORLINE_ERR_MAPPING_FATAL_ISSUE at PID-3\s*→\s*mapped/);
    await shot('09-tester-diff');

    // 10. Deploy, after confirming.
    await page.getByTestId('tester-deploy').click();
    await page.getByTestId('tester-confirm-deploy').click();
    await expect.poll(() => page.getByTestId('tester-deployed').textContent(), { timeout: 15_000 }).toContain('Deployed');
    await shot('10-deployed');
    const listing = (await (await fetch(`${t.httpUrl}/admin/mappings`, { headers: authHeaders() })).json()) as { configs: Array<{ name: string; active: { reason: string } }> };
    expect(listing.configs.find((c) => c.name === LEGACY_CONFIG_NAME)?.active.reason).toBe('console');

    // 11. Every registry picks the version up within its poll interval; then reprocess, and the message is done.
    await page.waitForTimeout(800);
    await page.getByTestId('tester-reprocess').click();
    await expect.poll(() => page.getByTestId('tester-reprocess').textContent(), { timeout: 15_000 }).toContain('Sent back');
    await page.goto(messageUrl);
    await page.locator('[data-testid="message-detail"][data-state="done"]').waitFor({ timeout: 30_000 });
    const patientRow = page.locator('[data-testid="written-resource"][data-resource-type="Patient"]');
    await patientRow.waitFor();
    const patientId = (await patientRow.getAttribute('data-resource-id'))!;
    const patient = (await (await fetch(`${t.httpUrl}/fhir/Patient/${patientId}`, { headers: authHeaders() })).json()) as { identifier: Array<{ value: string }> };
    expect(patient.identifier[0]?.value).toBe('MW-77120');
    await shot('11-message-done');

    // 12. The Patient's proof: fetched as data, verified in this browser, signed by the pinned key.
    await patientRow.getByTestId('verify-proof-link').click();
    await page.getByTestId('proof-verifier').waitFor();
    expect(await page.getByTestId('proof-id').inputValue()).toBe(patientId);
    const versionId = await patientRow.count().then(() => page.getByTestId('proof-version').inputValue());
    const bundleUrl = `${t.httpUrl}/proofs/Patient/${patientId}/_history/${versionId}`;
    const bundle = await eventually(async () => {
      const response = await fetch(bundleUrl, { headers: authHeaders() });
      return response.status === 200 ? ((await response.json()) as { logKey: string; leaf: { preimage: { resourceSha256: string } } }) : undefined;
    }, 30_000, 'a checkpoint holding the Patient');
    await page.getByTestId('proof-fetch-button').click();
    await expect.poll(async () => (await page.getByTestId('proof-bundle').inputValue()).length, { timeout: 20_000 }).toBeGreaterThan(100);
    await page.getByTestId('proof-raw-loaded').waitFor();
    await page.getByTestId('proof-log-key').fill(bundle.logKey);

    // Verifying asks the engine nothing.
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.getByTestId('proof-verify').click();
    const verdict = page.getByTestId('verify-verdict');
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-ok')).toBe('true');
    expect(await verdict.textContent()).toContain('Verified in this browser');
    for (const name of ['bundle-format', 'leaf-hash', 'resource-hash', 'raw-hash', 'checkpoint', 'inclusion', 'anchor', 'log-key']) {
      expect(await page.locator(`[data-testid="check-row"][data-check="${name}"]`).getAttribute('data-ok'), name).toBe('true');
    }
    expect(requests).toEqual([]);
    await shot('12-proof-verified');

    // 13. A tampered bundle: one hex digit of the committed resource hash changed. The leaf no longer hashes to
    // what the log holds, and the resource no longer matches: both checks fail by name, in the browser.
    const text = await page.getByTestId('proof-bundle').inputValue();
    const tampered = JSON.parse(text) as typeof bundle;
    const hash = tampered.leaf.preimage.resourceSha256;
    tampered.leaf.preimage.resourceSha256 = (hash[0] === '0' ? '1' : '0') + hash.slice(1);
    await page.getByTestId('proof-bundle').fill(JSON.stringify(tampered, null, 2));
    await page.getByTestId('proof-verify').click();
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-ok')).toBe('false');
    expect(await page.locator('[data-testid="check-row"][data-check="inclusion"]').getAttribute('data-ok')).toBe('false');
    expect(await page.locator('[data-testid="check-row"][data-check="resource-hash"]').getAttribute('data-ok')).toBe('false');
    expect(await page.locator('[data-testid="check-row"][data-check="checkpoint"]').getAttribute('data-ok')).toBe('true');
    expect(await verdict.textContent()).toContain('Not verified');
    expect(requests).toEqual([]);
    await shot('13-proof-tampered');

    // 14. The unmapped-code worklist is one click away.
    await page.getByTestId('nav-unmapped').click();
    await page.getByTestId('unmapped-list').waitFor();
    await shot('14-unmapped');

    // 15. A key the engine stops accepting sends the operator back to the login view.
    await page.evaluate(() => sessionStorage.setItem('anchorline.console.apiKey', 'revoked-key'));
    await page.getByTestId('nav-messages').click();
    await page.getByTestId('login-form').waitFor();
    expect(await page.getByTestId('login-error').textContent()).toContain('no longer accepts');
    await shot('15-logged-out');
  });
});
