import { describe, expect, it } from 'vitest';
import { escapeHl7 } from '../../formats/hl7v2/index.ts';
import type { Hl7Encoding } from '../../formats/hl7v2/types.ts';

const STANDARD: Hl7Encoding = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };
const CUSTOM: Hl7Encoding = { field: '!', component: '@', repetition: '#', escape: '$', subcomponent: '%', truncation: '*' };

describe('escapeHl7', () => {
  it.each([
    { value: '', encoding: STANDARD, want: '' },
    { value: 'plain text 홍길동', encoding: STANDARD, want: 'plain text 홍길동' },
    { value: 'a|b', encoding: STANDARD, want: 'a\\F\\b' },
    { value: 'a^b', encoding: STANDARD, want: 'a\\S\\b' },
    { value: 'a&b', encoding: STANDARD, want: 'a\\T\\b' },
    { value: 'a~b', encoding: STANDARD, want: 'a\\R\\b' },
    { value: 'a\\b', encoding: STANDARD, want: 'a\\E\\b' },
    { value: '\\F\\', encoding: STANDARD, want: '\\E\\F\\E\\' },
    { value: '|^~\\&', encoding: STANDARD, want: '\\F\\\\S\\\\R\\\\E\\\\T\\' },
    { value: 'line1\rline2\nline3', encoding: STANDARD, want: 'line1\\X0D\\line2\\X0A\\line3' },
    { value: 'no truncation char here: #', encoding: STANDARD, want: 'no truncation char here: #' },
    { value: '!@#$%*|^', encoding: CUSTOM, want: '$F$$S$$R$$E$$T$$P$|^' },
  ])('$value', ({ value, encoding, want }) => {
    expect(escapeHl7(value, encoding)).toBe(want);
  });
});
