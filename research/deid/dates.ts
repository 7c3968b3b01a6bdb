/**
 * Dates under de-identification: shifting a FHIR date, dateTime or instant by whole days while keeping its
 * precision and its written time of day and offset, and generalising a date to its year or month.
 *
 * A shift moves the calendar date only: `2024-03-05T10:15:00.123+09:00` shifted by -40 days is
 * `2024-01-25T10:15:00.123+09:00`, so the interval between two of a patient's times is unchanged to the millisecond
 * and nothing is rounded or reformatted. Partial dates keep their precision: a year-month is shifted from its 15th
 * and a year from its 1 July and then cut back, so that on average they move as the patient's full dates do.
 */

/** FHIR R4 date / dateTime / instant: year, year-month, date, or date and time with seconds (and fraction) and offset. */
const FHIR_DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function isFhirDate(value: string): boolean {
  const match = FHIR_DATE.exec(value);
  if (!match) return false;
  const month = match[2] === undefined ? 1 : Number(match[2]);
  const day = match[3] === undefined ? 1 : Number(match[3]);
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Days since 1970-01-01 of a calendar date, and back (proleptic Gregorian, through Date.UTC). */
const dayNumber = (year: number, month: number, day: number): number => Date.UTC(year, month - 1, day) / 86_400_000;
function calendarDate(days: number): { year: number; month: number; day: number } {
  const date = new Date(days * 86_400_000);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** `value` shifted by `days`, at its own precision; undefined when it is not a FHIR date. */
export function shiftDate(value: string, days: number): string | undefined {
  const match = FHIR_DATE.exec(value);
  if (!match || !isFhirDate(value)) return undefined;
  const year = Number(match[1]);
  if (match[2] === undefined) return pad(calendarDate(dayNumber(year, 7, 1) + days).year, 4);
  const month = Number(match[2]);
  if (match[3] === undefined) {
    const shifted = calendarDate(dayNumber(year, month, 15) + days);
    return `${pad(shifted.year, 4)}-${pad(shifted.month, 2)}`;
  }
  const shifted = calendarDate(dayNumber(year, month, Number(match[3])) + days);
  return `${pad(shifted.year, 4)}-${pad(shifted.month, 2)}-${pad(shifted.day, 2)}${match[4] ?? ''}`;
}

/** `value` cut to `precision` (never made more precise). */
export function generaliseDate(value: string, precision: 'year' | 'month'): string | undefined {
  const match = FHIR_DATE.exec(value);
  if (!match) return undefined;
  if (precision === 'year' || match[2] === undefined) return match[1]!;
  return `${match[1]}-${match[2]}`;
}

/** Whole years from a date to another (the age on `at` of someone born on `born`), at the precision both allow. */
export function yearsBetween(born: string, at: string): number | undefined {
  const from = FHIR_DATE.exec(born);
  const to = FHIR_DATE.exec(at);
  if (!from || !to) return undefined;
  let years = Number(to[1]) - Number(from[1]);
  const monthDay = (m: RegExpExecArray): number => (m[2] === undefined ? 0 : Number(m[2]) * 100 + (m[3] === undefined ? 0 : Number(m[3])));
  // With a partial date the birthday is taken as already passed: the larger age, which errs on the side of 90+.
  if (from[2] !== undefined && to[2] !== undefined && monthDay(to) < monthDay(from)) years -= 1;
  return years;
}

/**
 * Dates written in free text, in the forms Korean and international notes use: 2024-03-05, 2024.03.05, 2024/03/05
 * and 2024년 3월 5일. Each is shifted like a structured date of the same patient, in the form it was written.
 */
const TEXT_DATE = /(?<![0-9])(\d{4})([-./])(\d{1,2})\2(\d{1,2})(?![0-9])|(?<![0-9])(\d{4})년\s*(\d{1,2})월\s*(\d{1,2})일/g;

export function shiftDatesInText(text: string, days: number): { text: string; count: number } {
  let count = 0;
  const shifted = text.replace(TEXT_DATE, (whole, y1, sep, m1, d1, y2, m2, d2) => {
    const korean = y2 !== undefined;
    const year = Number(korean ? y2 : y1);
    const month = Number(korean ? m2 : m1);
    const day = Number(korean ? d2 : d1);
    if (month < 1 || month > 12 || day < 1 || day > 31 || year < 1800) return whole;
    count += 1;
    const to = calendarDate(dayNumber(year, month, day) + days);
    if (korean) return `${to.year}년 ${to.month}월 ${to.day}일`;
    const width = (written: string): number => written.length;
    return `${pad(to.year, 4)}${sep}${pad(to.month, width(m1))}${sep}${pad(to.day, width(d1))}`;
  });
  return { text: shifted, count };
}
