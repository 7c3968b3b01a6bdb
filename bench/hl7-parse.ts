/**
 * Parser throughput on one core: parses a typical ADT^A01 repeatedly and prints messages per second; then what the
 * intake adds to every message to enforce the structure caps (checkHl7Limits, formats/hl7v2/limits.ts), beside
 * the decoding it already does.
 * Run with `npx tsx bench/hl7-parse.ts [seconds]` (default 3 s of measurement after a 1 s warm-up).
 */

import { decodeHl7Bytes } from '../formats/hl7v2/charset.ts';
import { checkHl7Limits, parseHl7 } from '../formats/hl7v2/parse.ts';

// A realistic admit: header, event, patient with repeated identifiers/names/phones, next of kin, visit, two
// observations, allergy, diagnosis and insurance; a few escape sequences as real senders produce them.
const ADT_A01 = [
  'MSH|^~\\&|ADT1|GOOD HEALTH HOSPITAL|GHH LAB, INC.|GOOD HEALTH HOSPITAL|20240815083015+0900||ADT^A01^ADT_A01|MSG00001|P|2.5.1|||AL|NE|KOR|UNICODE UTF-8',
  'EVN|A01|20240815083000|||DOC123^KIM^MINSU|20240815082500',
  'PID|1||PATID1234^^^GHH^MR^GHH~880101-1234567^^^KRMOHW^NI||EVERYMAN^ADAM^A^III^MR.^^L~EVERYMAN^ADDIE^^^^^N||19610615|M||2106-3^White^CDCREC|2222 HOME STREET^APT 4B^GREENSBORO^NC^27401-1020^USA^H||(555) 555-2004^PRN^PH~010-1234-5678^PRS^CP~adam\\@example.org^NET^Internet^adam@example.org|(555) 555-2005^WPN^PH|ENG^English^ISO639|M^Married^HL70002|CHR|400003403~1129086|||N^Not Hispanic^HL70189||N|1|||||N',
  'NK1|1|EVERYMAN^EVE^E^^^^L|SPO^Spouse^HL70063|2222 HOME STREET^^GREENSBORO^NC^27401-1020^USA|(555) 555-2006^PRN^PH',
  'PV1|1|I|2000^2012^01^GHH^^^^^2nd floor \\T\\ east wing||||004777^ATTEND^AARON^A^^^MD|005777^REFER^RICHARD^R^^^MD|||SUR||||7|A0|004777^ATTEND^AARON^A^^^MD|I|V000123^^^GHH^VN|||||||||||||||||||||||||20240815080000',
  'PV2|||^Abdominal pain\\X0D\\\\X0A\\rule out appendicitis',
  'OBX|1|NM|29463-7^Body weight^LN||62.5|kg^kilogram^UCUM|||||F',
  'OBX|2|NM|8302-2^Body height^LN||175|cm^centimeter^UCUM|||||F',
  'AL1|1|DA|1605^PENICILLIN^RXNORM|SV|Hives \\T\\ wheezing',
  'DG1|1||K35.80^Unspecified acute appendicitis^I10||20240815|A',
  'IN1|1|PPO^Preferred plan|NHIS01^^^NHIS|National Health Insurance Service|^^Wonju^Gangwon^26464^KOR||||||||||||||||||||||||||||||||||||||||||||||12345678',
].join('\r') + '\r';

const seconds = Number(process.argv[2] ?? '3');
const bytes = Buffer.byteLength(ADT_A01, 'utf8');

// Keeps each result reachable so the engine cannot drop the parse as dead code.
let sink = 0;

function run(durationMs: number, once: () => number = () => parseHl7(ADT_A01).segments.length): { messages: number; elapsedMs: number } {
  const started = performance.now();
  let messages = 0;
  let elapsedMs = 0;
  while (elapsedMs < durationMs) {
    for (let i = 0; i < 1000; i++) sink += once();
    messages += 1000;
    elapsedMs = performance.now() - started;
  }
  return { messages, elapsedMs };
}

run(1000);
const { messages, elapsedMs } = run(seconds * 1000);
const perSecond = Math.round((messages * 1000) / elapsedMs);
console.log(
  `hl7-parse: ${perSecond.toLocaleString('en-US')} msgs/s (${messages} ADT^A01 messages of ${bytes} bytes in ${Math.round(elapsedMs)} ms; ` +
    `${((perSecond * bytes) / 1e6).toFixed(1)} MB/s; checksum ${sink % 997})`,
);

// The intake's share: decoding it already paid before the caps existed, and the count it pays now.
const raw = Buffer.from(ADT_A01, 'utf8');
const costs: Array<[string, () => number]> = [
  ['decodeHl7Bytes', () => decodeHl7Bytes(raw).text.length],
  ['checkHl7Limits', () => (checkHl7Limits(ADT_A01), 1)],
];
for (const [name, once] of costs) {
  run(500, once);
  const measured = run(seconds * 1000, once);
  console.log(`${name}: ${((measured.elapsedMs * 1000) / measured.messages).toFixed(2)} µs per ADT^A01 (checksum ${sink % 997})`);
}
