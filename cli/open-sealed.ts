/**
 * `anchorline open-sealed --key <private.jwk.json> [<export.jwe>]`: opens what POST /fhir/Patient/{id}/$export-sealed
 * answered (a compact JWE, from the file or standard input) with the recipient's private key, and writes the Bundle
 * it holds to standard output. It is what a recipient runs, so it needs no config, database or engine.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { openSealedExport } from '../api/index.ts';

export const OPEN_SEALED_USAGE = `usage: anchorline open-sealed --key <private.jwk.json> [<export.jwe>]

Decrypts a sealed export (Patient/$export-sealed) with the recipient's private key (a JWK: EC P-256, X25519 or RSA)
and writes the FHIR Bundle it holds to standard output. Reads the JWE from standard input when no file is named.
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runOpenSealed(argv: string[]): Promise<number> {
  let values: { key?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { key: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (error) {
    process.stderr.write(`anchorline open-sealed: ${(error as Error).message}\n\n${OPEN_SEALED_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(OPEN_SEALED_USAGE);
    return 0;
  }
  if (!values.key || positionals.length > 1) {
    process.stderr.write(OPEN_SEALED_USAGE);
    return 2;
  }
  try {
    let privateJwk: JWK;
    try {
      privateJwk = JSON.parse(await readFile(values.key, 'utf8')) as JWK;
    } catch (error) {
      // JSON.parse quotes the text it failed on, and that text is a private key.
      throw new Error(error instanceof SyntaxError ? `${values.key} is not a JWK (JSON)` : (error as Error).message);
    }
    const jwe = positionals[0] === undefined ? await readStdin() : await readFile(positionals[0], 'utf8');
    const bundle = await openSealedExport(jwe, privateJwk);
    process.stdout.write(JSON.stringify(bundle, null, 2) + '\n');
    return 0;
  } catch (error) {
    // The message names neither the key nor the content.
    process.stderr.write(`anchorline open-sealed: ${(error as Error).message}\n`);
    return 1;
  }
}
