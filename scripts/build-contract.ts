/**
 * `npm run build:contract [-- --check]`: compiles AnchorRegistry.sol for every supported EVM version and writes
 * anchor/chain/artifacts/AnchorRegistry.<evmVersion>.json. With --check it writes nothing and exits 1 if a
 * committed artifact differs from a fresh build (the build is reproducible, so they must be identical).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REGISTRY_EVM_VERSIONS } from '../anchor/chain/artifacts.ts';
import { compileRegistry } from '../anchor/chain/compile.ts';

const check = process.argv.includes('--check');
let stale = 0;
for (const evmVersion of REGISTRY_EVM_VERSIONS) {
  const file = fileURLToPath(new URL(`../anchor/chain/artifacts/AnchorRegistry.${evmVersion}.json`, import.meta.url));
  const text = JSON.stringify(compileRegistry(evmVersion), null, 2) + '\n';
  let committed = '';
  try {
    committed = readFileSync(file, 'utf8');
  } catch {
    // missing: stale
  }
  if (committed === text) {
    process.stdout.write(`${evmVersion}: up to date\n`);
  } else if (check) {
    stale += 1;
    process.stdout.write(`${evmVersion}: committed artifact differs from a fresh build\n`);
  } else {
    writeFileSync(file, text);
    process.stdout.write(`${evmVersion}: written\n`);
  }
}
process.exit(stale > 0 ? 1 : 0);
