/**
 * A streaming RFC 4180 reader for release tables (Loinc.csv, KCD and KOSTOM exports).
 *
 * Fields are separated by commas; a field in double quotes may hold commas, line breaks and quotes written twice
 * (""). Records end at LF or CR LF. Blank lines are skipped. Being lenient where exports are sloppy and strict where
 * a mistake would shift columns: a quote inside an unquoted field is kept as a character (spreadsheet exports write
 * 5" that way), but text after a closing quote, or a file that ends inside a quoted field, is an error naming the line.
 *
 * Records are produced one at a time from the decoded chunks, so memory holds one chunk and one record.
 */
import { TerminologyLoadError } from './errors.ts';
import { checkDecoded, MAX_LINE_CHARS, type TextFile } from './text-input.ts';

export interface CsvRecord {
  fields: string[];
  /** 1-based line on which the record starts. */
  line: number;
}

// Parser states.
const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
/** Just read a quote inside a quoted field: either the first of "" or the closing quote. */
const QUOTE_IN_QUOTED = 3;
/** Read a CR right after a closing quote: only LF may follow. */
const CR_AFTER_QUOTE = 4;

export async function* csvRecords(file: TextFile, delimiter = ','): AsyncGenerator<CsvRecord> {
  const delimiterCode = delimiter.charCodeAt(0);
  let state = FIELD_START;
  let fields: string[] = [];
  let field = '';
  let recordChars = 0;
  let line = 1;
  let recordLine = 1;
  // Whether the current record has any content (a blank line is a record with one empty, never-quoted field).
  let recordStarted = false;

  // After a record has ended at a line break (yielded or skipped as blank), the next one starts on the next line.
  const nextRecord = (): void => {
    fields = [];
    recordStarted = false;
    recordChars = 0;
    recordLine = line;
  };

  const fail = (atLine: number, problem: string): never => {
    throw new TerminologyLoadError(file.path, atLine, problem);
  };

  for await (const chunk of file.chunks()) {
    let runStart = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      switch (state) {
        case FIELD_START:
          if (c === 0x22) {
            state = QUOTED;
            recordStarted = true;
            runStart = i + 1;
          } else if (c === delimiterCode) {
            fields.push('');
            recordStarted = true;
            runStart = i + 1;
          } else if (c === 0x0a) {
            line++;
            if (recordStarted || fields.length > 0) {
              fields.push('');
              yield { fields, line: recordLine };
            }
            nextRecord();
            runStart = i + 1;
          } else {
            state = UNQUOTED;
            recordStarted = true;
            runStart = i;
          }
          break;
        case UNQUOTED:
          if (c === delimiterCode) {
            fields.push(field + chunk.slice(runStart, i));
            field = '';
            state = FIELD_START;
            runStart = i + 1;
          } else if (c === 0x0a) {
            let value = field + chunk.slice(runStart, i);
            if (value.endsWith('\r')) value = value.slice(0, -1);
            fields.push(value);
            field = '';
            line++;
            if (!(fields.length === 1 && fields[0] === '')) yield { fields, line: recordLine };
            nextRecord();
            state = FIELD_START;
            runStart = i + 1;
          }
          break;
        case QUOTED:
          if (c === 0x22) {
            field += chunk.slice(runStart, i);
            state = QUOTE_IN_QUOTED;
          } else if (c === 0x0a) {
            line++;
          }
          break;
        case QUOTE_IN_QUOTED:
          if (c === 0x22) {
            field += '"';
            state = QUOTED;
            runStart = i + 1;
          } else if (c === delimiterCode) {
            fields.push(field);
            field = '';
            state = FIELD_START;
            runStart = i + 1;
          } else if (c === 0x0a || c === 0x0d) {
            if (c === 0x0d) {
              state = CR_AFTER_QUOTE;
              break;
            }
            fields.push(field);
            field = '';
            line++;
            yield { fields, line: recordLine };
            nextRecord();
            state = FIELD_START;
            runStart = i + 1;
          } else {
            fail(line, 'text after the closing quote of a quoted field (a quote inside a quoted field must be written twice: "")');
          }
          break;
        case CR_AFTER_QUOTE:
          if (c !== 0x0a) fail(line, 'a carriage return after a closing quote that does not end the line');
          fields.push(field);
          field = '';
          line++;
          yield { fields, line: recordLine };
          nextRecord();
          state = FIELD_START;
          runStart = i + 1;
          break;
      }
    }
    // Carry the unfinished run of the current field over to the next chunk.
    if (state === UNQUOTED || state === QUOTED) field += chunk.slice(runStart);
    recordChars += chunk.length;
    if (recordChars > MAX_LINE_CHARS && field.length + fields.reduce((n, f) => n + f.length, 0) > MAX_LINE_CHARS) {
      fail(recordLine, `record is longer than ${MAX_LINE_CHARS} characters${state === QUOTED ? ' (an unclosed quote?)' : ''}`);
    }
  }

  switch (state) {
    case QUOTED:
      fail(recordLine, 'the file ends inside a quoted field (a quote is not closed)');
      break;
    case UNQUOTED: {
      const value = field.endsWith('\r') ? field.slice(0, -1) : field;
      fields.push(value);
      if (!(fields.length === 1 && fields[0] === '')) yield { fields, line: recordLine };
      break;
    }
    case QUOTE_IN_QUOTED:
    case CR_AFTER_QUOTE:
      fields.push(field);
      yield { fields, line: recordLine };
      break;
    case FIELD_START:
      if (fields.length > 0) {
        fields.push('');
        yield { fields, line: recordLine };
      }
      break;
  }
}

/** A column a loader reads, with the header names it goes by in the releases seen (compared loosely). */
export interface ColumnSpec {
  /** How error messages name the column. */
  label: string;
  names: readonly string[];
  required: boolean;
}

/** Header name comparison ignores case, spaces, underscores, hyphens, dots and brackets, and a BOM. */
export function headerKey(name: string): string {
  return name.replace(/^\uFEFF/, '').toLowerCase().replace(/[\s_\-.()[\]/]/g, '');
}

/**
 * Finds each column of `specs` in the header record. Throws a TerminologyLoadError naming the file, the header line
 * and the missing column (with the header as found) when a required one is absent.
 */
export function locateColumns<K extends string>(file: TextFile, header: CsvRecord, specs: Record<K, ColumnSpec>): Record<K, number | undefined> {
  const keys = header.fields.map(headerKey);
  const located = {} as Record<K, number | undefined>;
  for (const [name, spec] of Object.entries(specs) as [K, ColumnSpec][]) {
    const index = keys.findIndex((key) => spec.names.some((candidate) => headerKey(candidate) === key));
    if (index < 0 && spec.required) {
      throw new TerminologyLoadError(
        file.path,
        header.line,
        `the header has no ${spec.label} column (looked for ${spec.names.join(' / ')}; found ${header.fields.map((f) => f.replace(/^\uFEFF/, '')).join(', ')})`,
      );
    }
    located[name] = index < 0 ? undefined : index;
  }
  return located;
}

/** Checks that a data record has as many fields as the header; a short one is usually a truncated line. */
export function checkFieldCount(file: TextFile, record: CsvRecord, expected: number): void {
  if (record.fields.length === expected) return;
  const hint = record.fields.length < expected ? ' (a truncated line?)' : ' (an unquoted comma?)';
  throw new TerminologyLoadError(file.path, record.line, `expected ${expected} fields as in the header, found ${record.fields.length}${hint}`);
}

export interface TableRow<K extends string> {
  fields: string[];
  line: number;
  /** The trimmed value of a located column; '' when the column is absent. */
  value(column: K): string;
}

/**
 * The data rows of a table whose first record is its header: every field must have decoded cleanly, the header must
 * hold the required `specs` columns (and pass `checkHeader`, when given), and every row must be as wide as the
 * header. A file without even a header row is an error.
 */
export async function* tableRows<K extends string>(
  file: TextFile,
  specs: Record<K, ColumnSpec>,
  checkHeader?: (columns: Record<NoInfer<K>, number | undefined>, header: CsvRecord) => void,
): AsyncGenerator<TableRow<K>> {
  let columns: Record<K, number | undefined> | undefined;
  let width = 0;
  for await (const record of csvRecords(file)) {
    for (const field of record.fields) checkDecoded(field, file, record.line);
    if (!columns) {
      columns = locateColumns(file, record, specs);
      checkHeader?.(columns, record);
      width = record.fields.length;
      continue;
    }
    checkFieldCount(file, record, width);
    const located = columns;
    yield {
      fields: record.fields,
      line: record.line,
      value: (column) => {
        const index = located[column];
        return index === undefined ? '' : record.fields[index]!.trim();
      },
    };
  }
  if (!columns) throw new TerminologyLoadError(file.path, 0, 'the file is empty (no header row)');
}
