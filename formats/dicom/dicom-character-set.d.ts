/** Types for the parts of dicom-character-set 1.x that anchorline uses (the package ships none). */
declare module 'dicom-character-set' {
  export interface CodeElement {
    codeElement: 'G0' | 'G1';
    escapeSequence: number[];
    encoding: string;
    bytesPerCodePoint: number;
    isASCII?: boolean;
    setHighBit?: boolean;
    isJISX0212?: boolean;
  }
  export interface CharacterSet {
    encoding?: string;
    extension?: boolean;
    multiByte?: boolean;
    elements?: CodeElement[];
  }
  /** Defined Terms of Specific Character Set (0008,0005) -> how bytes in that set are decoded. */
  export const characterSets: Readonly<Record<string, CharacterSet>>;
  /**
   * Decodes the bytes of one value. Invalid bytes become U+FFFD (TextDecoder is not fatal); throws Error for a
   * Specific Character Set it does not know.
   */
  export function convertBytes(specificCharacterSet: string | undefined, bytes: Uint8Array, options?: { vr?: string }): string;
}
