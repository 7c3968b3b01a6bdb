/**
 * The names anchorline writes into the file meta groups it makes (part10.ts), and that the reader (parse.ts)
 * recognises there.
 */

/** Our implementation class UID (a UUID-derived UID, PS3.5 B.2), written into every file meta group we make. */
export const IMPLEMENTATION_CLASS_UID = '2.25.186232566078651622444903801208637435033';
/** At most 16 characters (SH). */
export const IMPLEMENTATION_VERSION_NAME = 'ANCHORLINE_1';
/**
 * Private Information (0002,0102) under our Private Information Creator UID (0002,0100, the implementation class
 * UID): the data set was received without File Meta Information, and the group around it is ours.
 */
export const NO_FILE_META_NOTE = 'RECEIVED_WITHOUT_FILE_META';
