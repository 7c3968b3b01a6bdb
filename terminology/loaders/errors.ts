/**
 * The one way a release file is rejected: a catalogue error (ANCHORLINE_ERR_INVALID_REQUEST, permanent) whose detail
 * starts with `<file>:<line>:` so that whoever runs the load can open the file at the offending line. A load that
 * throws it has been rolled back: the previously loaded version of the code system is untouched.
 */
import { AnchorlineError } from '../../errors/index.ts';

export class TerminologyLoadError extends AnchorlineError {
  /** The release file, as it was given (or found in the release directory). */
  readonly file: string;
  /** 1-based line of the file; 0 when the problem is the file as a whole (missing, empty, wrong name). */
  readonly line: number;

  constructor(file: string, line: number, problem: string, options?: { cause?: unknown }) {
    const where = line > 0 ? `${file}:${line}` : file;
    super('ANCHORLINE_ERR_INVALID_REQUEST', `${where}: ${problem}`, { location: where, ...(options?.cause !== undefined ? { cause: options.cause } : {}) });
    this.name = 'TerminologyLoadError';
    this.file = file;
    this.line = line;
  }
}
