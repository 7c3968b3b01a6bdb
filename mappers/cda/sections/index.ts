/**
 * Every section converter of this folder, in the order they are tried: the first whose templateIds or LOINC codes
 * match a section claims it (section-converters.ts).
 */
import type { SectionConverter } from '../section-types.ts';

export const SECTION_CONVERTERS: readonly SectionConverter[] = [];
