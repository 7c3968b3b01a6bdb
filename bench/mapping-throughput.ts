/**
 * Mapping throughput per message type, in-process on one core: decode by MSH-18, parse, map, apply the drafts
 * (mergeDraft onto nothing) and validate every resource against FHIR R4, as the ingest job does minus the database.
 *
 *   npm run bench:mapping -- [--seconds 2] [--fixtures <dir>] [--only <type^event>] [--cpu]
 *
 * The corpus is every fixture message that maps (test/fixtures/adt and test/fixtures/hl7v2/*: *.hl7 with an
 * *.expected.json), grouped by MSH-9 message type^trigger event; each group runs for --seconds after a warm-up, and
 * the table prints messages/s and the time per message, with and without the FHIR validation.
 * End to end over MLLP with the same mixed corpus: `npm run bench:mllp -- --corpus`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeHl7Bytes, parseHl7 } from '../formats/hl7v2/index.ts';
import { defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource, type Hl7MappingOptions } from '../mappers/index.ts';


export interface CorpusMessage {
  name: string;
  bytes: Buffer;
  options: Hl7MappingOptions;
  type: string;
}

/** Every fixture message that maps successfully, with its options. */
export function loadMappingCorpus(root = path.join(import.meta.dirname, '..', 'test', 'fixtures')): CorpusMessage[] {
  const dirs = [path.join(root, 'adt')];
  const families = path.join(root, 'hl7v2');
  if (existsSync(families)) for (const family of readdirSync(families)) dirs.push(path.join(families, family));
  const corpus: CorpusMessage[] = [];
  for (const dir of dirs) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.hl7')).sort()) {
      const name = file.slice(0, -4);
      if (!existsSync(path.join(dir, `${name}.expected.json`))) continue;
      const optionsFile = path.join(dir, `${name}.options.json`);
      const options = existsSync(optionsFile) ? { ...defaultHl7MappingOptions, ...(JSON.parse(readFileSync(optionsFile, 'utf8')) as object) } : defaultHl7MappingOptions;
      // Fixture files may separate segments with LF or CRLF; the wire format is CR.
      const bytes = Buffer.from(readFileSync(path.join(dir, file)).toString('latin1').replace(/\r\n|\n/g, '\r'), 'latin1');
      const header = decodeHl7Bytes(bytes, 'utf-8').header;
      corpus.push({ name: `${path.basename(dir)}/${name}`, bytes, options, type: `${header.messageType}^${header.triggerEvent}` });
    }
  }
  return corpus;
}

function mapOne(message: CorpusMessage, validate: boolean): number {
  const decoded = decodeHl7Bytes(message.bytes, 'utf-8');
  const result = mapHl7Message(parseHl7(decoded.text), message.options);
  let problems = 0;
  for (const draft of result.drafts) {
    const resource = mergeDraft(undefined, draft);
    if (validate) problems += validateFhirResource(resource).length;
  }
  return result.drafts.length + problems;
}

/**
 * Milliseconds elapsed by the clock the run is measured with: wall time, or with --cpu the process's CPU time (user
 * and system), which a machine busy with other work disturbs far less: compare versions with --cpu on a shared machine.
 */
let clockMs = (): number => performance.now();
const cpuClockMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

function measure(messages: CorpusMessage[], validate: boolean, ms: number): number {
  let count = 0;
  let sink = 0;
  const started = clockMs();
  // The clock is read every few passes: process.cpuUsage() costs as much as mapping a small message.
  while (clockMs() - started < ms) {
    for (let pass = 0; pass < 16; pass++) for (const message of messages) sink += mapOne(message, validate);
    count += 16 * messages.length;
  }
  if (sink < 0) console.log(sink);
  return (count * 1000) / (clockMs() - started);
}

if (import.meta.main) {
  // --fixtures: another fixture tree (an older checkout's test/fixtures), to compare two versions on one corpus.
  // --only: one message type (`ADT^A04`), for a CPU profile of that type alone (node --cpu-prof).
  // --cpu: messages per CPU second of this process instead of per wall-clock second.
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, fixtures: { type: 'string' }, only: { type: 'string' }, cpu: { type: 'boolean', default: false } } });
  if (values.cpu) clockMs = cpuClockMs;
  const SECONDS = Number(values.seconds);
  const loaded = values.fixtures === undefined ? loadMappingCorpus() : loadMappingCorpus(path.resolve(values.fixtures));
  const corpus = values.only === undefined ? loaded : loaded.filter((message) => message.type === values.only);
  const byType = new Map<string, CorpusMessage[]>();
  for (const message of corpus) byType.set(message.type, [...(byType.get(message.type) ?? []), message]);
  validateFhirResource({ resourceType: 'Patient' });
  console.log(`mapping throughput, one core, ${corpus.length} fixture messages in ${byType.size} types, ${SECONDS} s per type and mode`);
  console.log(`${'type'.padEnd(10)} ${'msgs'.padStart(4)}  ${'map+validate msg/s'.padStart(18)}  ${'µs/msg'.padStart(7)}  ${'map only msg/s'.padStart(14)}`);
  const rows: Array<[string, number, number]> = [];
  for (const [type, messages] of [...byType.entries()].sort()) {
    measure(messages, true, 300);
    const full = measure(messages, true, SECONDS * 1000);
    const bare = measure(messages, false, SECONDS * 1000);
    rows.push([type, full, bare]);
    console.log(`${type.padEnd(10)} ${String(messages.length).padStart(4)}  ${Math.round(full).toLocaleString('en-US').padStart(18)}  ${(1e6 / full).toFixed(0).padStart(7)}  ${Math.round(bare).toLocaleString('en-US').padStart(14)}`);
  }
  const mixed = measure(corpus, true, SECONDS * 1000);
  console.log(`${'mixed'.padEnd(10)} ${String(corpus.length).padStart(4)}  ${Math.round(mixed).toLocaleString('en-US').padStart(18)}  ${(1e6 / mixed).toFixed(0).padStart(7)}`);
}
