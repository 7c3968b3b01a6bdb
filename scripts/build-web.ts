/**
 * `npm run build:web`: builds the web console into web/dist (web/build.ts). Runs before `npm start` and `npm test`.
 */
import { buildConsole } from '../web/index.ts';

const result = await buildConsole();
process.stdout.write(`console built into ${result.outDir} in ${result.ms} ms\n`);
