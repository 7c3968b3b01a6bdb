/**
 * Identifiers in free text: what is removed from every string the configuration keeps as text (`scrubText`), and
 * the guard that runs over the whole output whatever the configuration says (`containsResidentNumber`).
 *
 * Removed from text: Korean resident registration numbers (주민등록번호) and alien registration numbers (same
 * form: YYMMDD, a check digit group of 7, with or without the dash, or with the back half masked as 1******, which
 * still publishes a birth date and sex), telephone numbers (Korean mobile 010-####-####, Korean area numbers, +82 and
 * other international numbers), US social security numbers, e-mail addresses, URLs and IP addresses, the names the
 * caller knows for this patient (and those of the resource itself), a name after a label (환자명:, 성명:, 이름:,
 * 보호자:, Patient:, Name:), and a Hangul name before an honorific (님, 씨) when it starts with a common surname.
 * Dates in text are shifted (dates.ts), not removed.
 *
 * Arbitrary Hangul names without such a cue are not detected: a Hangul word starting with a common surname
 * syllable (이, 고, 정, ...) is as likely to be a clinical term (이상, 고혈압, 정상), and removing those would destroy
 * the text. Configurations that keep free text should therefore pass the patient's names (DeidContext.knownNames).
 */
import { shiftDatesInText } from './dates.ts';

/** The 주민등록번호 / 외국인등록번호 pattern: birth date YYMMDD, then the sex/century digit and six more. */
const RESIDENT_NUMBER = /(?<![0-9])\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?[-–]?\s?\d(?:\d{6}|[*xX●○]{6})(?![0-9])/g;

export const RESIDENT_NUMBER_PATTERN: RegExp = new RegExp(RESIDENT_NUMBER.source);

/** True when a text holds anything of the form of a resident registration number. */
export function containsResidentNumber(text: string): boolean {
  return RESIDENT_NUMBER_PATTERN.test(text);
}

interface Pattern {
  category: string;
  pattern: RegExp;
  replacement: string | ((match: string, ...groups: string[]) => string);
}

/** Common Korean surnames (the first syllable of a name before 님 or 씨), including the two-syllable ones. */
const SURNAMES = '김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채원천방공현함변염여추도소석선설마길연위표명기반라왕금옥육인맹제모탁국어은편용예경봉사부';
const COMPOUND_SURNAMES = ['남궁', '황보', '제갈', '선우', '독고', '사공', '서문'];

const PATTERNS: readonly Pattern[] = [
  { category: 'resident-number', pattern: RESIDENT_NUMBER, replacement: '[주민등록번호]' },
  // Korean numbers: mobile 010/011/016-019, Seoul 02, area codes 031-064, 070; with -, space, . or ) between groups.
  { category: 'phone', pattern: /(?<![0-9])(?:\+82[-\s]?|0)(?:1[016789]|2|[3-6][1-5]|70)[-\s.)]{0,2}\d{3,4}[-\s.]?\d{4}(?![0-9])/g, replacement: '[전화번호]' },
  { category: 'phone', pattern: /(?<![0-9])\+\d{1,3}[-\s]?\(?\d{1,4}\)?[-\s]?\d{3,4}[-\s]?\d{3,4}(?![0-9])/g, replacement: '[phone]' },
  { category: 'phone', pattern: /(?<![0-9])\(?\d{3}\)?[-\s.]\d{3}[-.]\d{4}(?![0-9])/g, replacement: '[phone]' },
  { category: 'ssn', pattern: /(?<![0-9])\d{3}-\d{2}-\d{4}(?![0-9])/g, replacement: '[id]' },
  { category: 'email', pattern: /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, replacement: '[email]' },
  { category: 'url', pattern: /\bhttps?:\/\/[^\s<>"']+/g, replacement: '[url]' },
  { category: 'ip', pattern: /(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9.])/g, replacement: '[ip]' },
  {
    category: 'name',
    pattern: /(환자\s*명|환자\s*이름|성\s*명|이\s*름|보호자|Patient(?:\s+name)?|Name)(\s*[:：]\s*)([^\s,;()<>]+(?:\s[A-Za-z][^\s,;()<>]*)?)/gi,
    replacement: (_match: string, label: string, separator: string) => `${label}${separator}[이름]`,
  },
  {
    category: 'name',
    pattern: new RegExp(`(?:${COMPOUND_SURNAMES.join('|')}|[${SURNAMES}])[가-힣]{1,3}(?=\\s?(?:님|씨)(?![가-힣]))`, 'g'),
    replacement: '[이름]',
  },
];

export interface ScrubOptions {
  /** Names to remove wherever they occur: the patient's and related persons', as written in HumanName. */
  names: readonly string[];
  /** Shift dates in the text by this many days; absent: dates are left as written. */
  shiftDays?: number;
}

/** The text with identifiers removed, and the categories removed (for the audit, never the values). */
export function scrubText(text: string, options: ScrubOptions): { text: string; removed: string[] } {
  const removed = new Set<string>();
  let out = text;
  for (const name of namePatterns(options.names)) {
    const next = out.replace(name, '[이름]');
    if (next !== out) removed.add('name');
    out = next;
  }
  for (const { category, pattern, replacement } of PATTERNS) {
    const next = out.replace(pattern, replacement as string);
    if (next !== out) removed.add(category);
    out = next;
  }
  if (options.shiftDays !== undefined) {
    const shifted = shiftDatesInText(out, options.shiftDays);
    if (shifted.count > 0) removed.add('date-shifted');
    out = shifted.text;
  }
  return { text: out, removed: [...removed] };
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Patterns for known names, longest first so that a full name is replaced before its parts. Hangul parts match
 * anywhere (Korean attaches particles: 서연이가, 서연씨); Latin parts match as whole words, case-insensitively. Parts
 * of a single character are too common to remove on their own (a one-syllable Hangul given name, an initial).
 */
function namePatterns(names: readonly string[]): RegExp[] {
  const terms = [...new Set(names.map((n) => n.trim()).filter((n) => [...n].length >= 2))].sort((a, b) => b.length - a.length);
  return terms.map((term) => {
    const flexible = escape(term).replace(/\s+/g, '\\s*');
    return /[가-힣]/.test(term) ? new RegExp(flexible, 'g') : new RegExp(`\\b${flexible}\\b`, 'gi');
  });
}

/**
 * The name strings of FHIR HumanName values: each family and given name, the full name in Korean order (family
 * then given, with and without a space) and in Western order, and the text form.
 */
export function namesOf(humanNames: unknown): string[] {
  const list = Array.isArray(humanNames) ? humanNames : [humanNames];
  const out: string[] = [];
  for (const name of list) {
    if (!name || typeof name !== 'object') continue;
    const { family, given, text } = name as { family?: unknown; given?: unknown; text?: unknown };
    const givens = Array.isArray(given) ? given.filter((g): g is string => typeof g === 'string') : [];
    if (typeof family === 'string') out.push(family);
    out.push(...givens);
    if (typeof text === 'string') out.push(text);
    if (typeof family === 'string' && givens.length > 0) {
      const joined = givens.join(' ');
      out.push(`${family}${joined}`, `${family} ${joined}`, `${joined} ${family}`);
    }
  }
  return out;
}
