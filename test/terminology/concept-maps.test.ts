/** ConceptMap files: the three formats normalise to one ConceptMap; malformed files are coded errors. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isAnchorlineError } from '../../errors/index.ts';
import { conceptMapId, conceptMapSha256, flattenConceptMap, parseConceptMap, type ConceptMapFormat } from '../../terminology/index.ts';
import { parseCsv } from '../../terminology/concept-maps.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/terminology/conceptmaps');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

const MAPS = {
  'kostom-to-snomed': { url: 'http://hospital.example.org/fhir/ConceptMap/kostom-to-snomed', version: '2026.1', name: 'KostomToSnomedCt' },
  'local-to-kcd': { url: 'http://hospital.example.org/fhir/ConceptMap/local-dx-to-kcd', version: '1.0', name: 'LocalDiagnosisToKcd8' },
} as const;

describe('the three formats', () => {
  for (const [file, header] of Object.entries(MAPS)) {
    it(`${file}: JSON, YAML and CSV give the same ConceptMap and hash`, () => {
      const json = parseConceptMap(fixture(`${file}.json`), 'json');
      const yaml = parseConceptMap(fixture(`${file}.yaml`), 'yaml');
      const csv = parseConceptMap(fixture(`${file}.csv`), 'csv', header);
      expect(yaml).toEqual(json);
      expect(csv).toEqual(json);
      expect(conceptMapSha256(yaml)).toBe(conceptMapSha256(json));
      expect(json.id).toBe(conceptMapId(header.url));
      expect(json.url).toBe(header.url);
      expect(json.version).toBe(header.version);
    });
  }

  it('keeps codes as spelt (leading zeros) and flattens one row per target', () => {
    const map = parseConceptMap(fixture('kostom-to-snomed.yaml'), 'yaml');
    const flat = flattenConceptMap(map);
    expect(flat.map((f) => f.sourceCode)).toEqual(['0010101', '0010202', '0010303', '0010404', '0010505']);
    expect(flat[3]).toEqual({ sourceSystem: 'http://www.hl7korea.or.kr/CodeSystem/kostom', sourceCode: '0010404', targetSystem: 'http://snomed.info/sct', targetCode: '195967001', targetDisplay: 'Asthma', equivalence: 'wider' });
    expect(flat[4]).toMatchObject({ sourceCode: '0010505', targetCode: '', equivalence: 'unmatched' });
    const kcd = flattenConceptMap(parseConceptMap(fixture('local-to-kcd.csv'), 'csv', MAPS['local-to-kcd']));
    expect(kcd.filter((f) => f.sourceCode === 'DX-DM2').map((f) => [f.targetCode, f.equivalence])).toEqual([['E11.9', 'equivalent'], ['E11', 'wider']]);
  });

  it('normalises deterministically, so a reload is recognised', () => {
    const a = parseConceptMap(fixture('admit-source.yaml'), 'yaml');
    const b = parseConceptMap(fixture('admit-source.yaml'), 'yaml');
    expect(conceptMapSha256(a)).toBe(conceptMapSha256(b));
    expect(a.group[0]!.element[0]).toEqual({ code: '7', display: 'Emergency room', target: [{ code: 'emd', display: 'From accident/emergency department', equivalence: 'equivalent' }] });
  });
});

describe('malformed files (wantErr)', () => {
  const cases: Array<{ name: string; format: ConceptMapFormat; text: string; options?: Record<string, string>; want: RegExp }> = [
    { name: 'JSON that is not JSON', format: 'json', text: '{"resourceType":', want: /not JSON/ },
    { name: 'JSON of another resource', format: 'json', text: '{"resourceType":"ValueSet"}', want: /not a ConceptMap/ },
    { name: 'JSON without version', format: 'json', text: '{"resourceType":"ConceptMap","url":"u","group":[{"source":"s","target":"t","element":[{"code":"a","target":[{"code":"b","equivalence":"equal"}]}]}]}', want: /no version/ },
    { name: 'JSON target without equivalence', format: 'json', text: '{"resourceType":"ConceptMap","url":"u","version":"1","group":[{"source":"s","target":"t","element":[{"code":"a","target":[{"code":"b"}]}]}]}', want: /equivalence must be one of/ },
    { name: 'JSON group without source', format: 'json', text: '{"resourceType":"ConceptMap","url":"u","version":"1","group":[{"target":"t","element":[{"code":"a","target":[{"code":"b","equivalence":"equal"}]}]}]}', want: /source is required/ },
    { name: 'JSON version differing from --version', format: 'json', text: '{"resourceType":"ConceptMap","url":"u","version":"1","group":[{"source":"s","target":"t","element":[{"code":"a","target":[{"code":"b","equivalence":"equal"}]}]}]}', options: { version: '2' }, want: /differs/ },
    { name: 'YAML with an unknown key', format: 'yaml', text: 'url: u\nversion: "1"\nsourceSystem: s\ntargetSystem: t\nmapings: []\n', want: /unknown key mapings/ },
    { name: 'YAML mapping without source', format: 'yaml', text: 'url: u\nversion: "1"\nsourceSystem: s\ntargetSystem: t\nmappings:\n  - target: b\n', want: /mappings\[0\]\.source is required/ },
    { name: 'YAML with a bad equivalence', format: 'yaml', text: 'url: u\nversion: "1"\nsourceSystem: s\ntargetSystem: t\nmappings:\n  - {source: a, target: b, equivalence: same}\n', want: /equivalence must be one of/ },
    { name: 'YAML mapping the same pair twice', format: 'yaml', text: 'url: u\nversion: "1"\nsourceSystem: s\ntargetSystem: t\nmappings:\n  - {source: a, target: b}\n  - {source: a, target: b}\n', want: /twice/ },
    { name: 'YAML equivalent mapping without target', format: 'yaml', text: 'url: u\nversion: "1"\nsourceSystem: s\ntargetSystem: t\nmappings:\n  - {source: a}\n', want: /needs a target code/ },
    { name: 'YAML with a duplicate key', format: 'yaml', text: 'url: u\nurl: v\n', want: /not YAML/ },
    { name: 'CSV without --url', format: 'csv', text: 'source_system,source_code,target_system,target_code\ns,a,t,b\n', options: { version: '1' }, want: /url/ },
    { name: 'CSV with an unknown column', format: 'csv', text: 'source_system,source_code,target_system,target_code,note\ns,a,t,b,x\n', options: { url: 'u', version: '1' }, want: /unknown CSV column note/ },
    { name: 'CSV missing a column', format: 'csv', text: 'source_system,source_code,target_code\ns,a,b\n', options: { url: 'u', version: '1' }, want: /lacks target_system/ },
    { name: 'CSV row with too few fields', format: 'csv', text: 'source_system,source_code,target_system,target_code\ns,a,t\n', options: { url: 'u', version: '1' }, want: /line 2/ },
    { name: 'CSV with an unclosed quote', format: 'csv', text: 'source_system,source_code,target_system,target_code\ns,"a,t,b\n', options: { url: 'u', version: '1' }, want: /not closed/ },
    { name: 'CSV with a header only', format: 'csv', text: 'source_system,source_code,target_system,target_code\n', options: { url: 'u', version: '1' }, want: /no mapping rows/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      let thrown: unknown;
      try {
        parseConceptMap(c.text, c.format, c.options ?? {});
      } catch (error) {
        thrown = error;
      }
      expect(isAnchorlineError(thrown)).toBe(true);
      expect((thrown as Error).message).toMatch(c.want);
      expect((thrown as { code: string }).code).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    });
  }
});

describe('CSV reading', () => {
  it('reads RFC 4180 quoting, CRLF, a BOM and blank lines', () => {
    expect(parseCsv('\uFEFFa,b\r\n"x, ""y""",\r\n\r\n"multi\nline",z')).toEqual([['a', 'b'], ['x, "y"', ''], ['multi\nline', 'z']]);
    // Error lines count physical lines, also past blank lines and line breaks inside quotes.
    expect(() => parseConceptMap('source_system,source_code,target_system,target_code\n\ns,"a\nb",t,c\ns,a\n', 'csv', { url: 'u', version: '1' })).toThrow(/line 5/);
  });

  it('any text gives a map or a coded error, never another throw', () => {
    const alphabet = fc.constantFrom('a', ',', '"', '\n', '\r', ' ', 'source_system', 'source_code', 'target_system', 'target_code', 'equivalence', 'wider', 'unmatched');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (parts) => {
        const text = parts.join('');
        try {
          parseConceptMap(text, 'csv', { url: 'u', version: '1' });
        } catch (error) {
          if (!isAnchorlineError(error)) throw error;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('any YAML text gives a map or a coded error, never another throw', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        for (const format of ['yaml', 'json'] as const) {
          try {
            parseConceptMap(text, format);
          } catch (error) {
            if (!isAnchorlineError(error)) throw error;
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
