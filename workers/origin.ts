/** The source a message's connection or credential is bound to, from the inbox row's origin label (adapters/sources.ts originLabel). */
export function boundSourceOf(source: string): string | undefined {
  return / source=(\S+)$/.exec(source)?.[1];
}
