/**
 * Which source may send what (config `sources`): one hospital must not be able to send as another.
 *
 * A source claims HL7 v2 sending facilities (MSH-4) and applications (MSH-3) by namespace id, and C-CDA author or
 * custodian organizations by OID. A message naming something claimed is accepted only when the connection or
 * credential it came over is bound to the claiming source: an API key or OAuth client created with that source, or
 * an MLLP TLS connection whose client certificate is pinned to it. What no source claims may be sent by anyone with
 * the ingest scope, bound or not, as before sources existed; a bound sender may also send it (a hospital's feed
 * often carries a few facilities nobody registered).
 *
 * The refusal is ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED: an AR/CR NAK or HTTP 403, and the message is kept as
 * rejected for inspection, where it does not take the (sender, control id) key from the real sender.
 */
import { createHash } from 'node:crypto';
import { AnchorlineError } from '../errors/index.ts';

export interface SourceDefinition {
  name: string;
  sendingFacilities: readonly string[];
  sendingApplications: readonly string[];
  cdaOrganizations: readonly string[];
  mllp: { clientCertificateSha256: readonly string[] };
}

/** The namespace id of an HD (MSH-3, MSH-4): its first component. */
function namespaceId(hd: string): string {
  return hd.split(/[\^&]/, 1)[0]!.trim();
}

/** Where a message came from, as the inbox stores it: the listener and peer, and the source it is bound to. */
export function originLabel(listener: string, boundSource: string | undefined): string {
  return boundSource ? `${listener} source=${boundSource}` : listener;
}

/** A fingerprint as 64 lowercase hex digits, colons dropped. */
export function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replace(/:/g, '').toLowerCase();
}

/** SHA-256 of a DER certificate, as normaliseFingerprint gives it. */
export function certificateFingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

export class SourcePolicy {
  private readonly facilities = new Map<string, string>();
  private readonly applications = new Map<string, string>();
  private readonly organizations = new Map<string, string>();
  private readonly certificates = new Map<string, string>();
  readonly names: readonly string[];

  constructor(sources: readonly SourceDefinition[]) {
    this.names = sources.map((s) => s.name);
    for (const source of sources) {
      for (const facility of source.sendingFacilities) this.facilities.set(facility, source.name);
      for (const application of source.sendingApplications) this.applications.set(application, source.name);
      for (const organization of source.cdaOrganizations) this.organizations.set(organization, source.name);
      for (const fingerprint of source.mllp.clientCertificateSha256) this.certificates.set(normaliseFingerprint(fingerprint), source.name);
    }
  }

  get hasPinnedCertificates(): boolean {
    return this.certificates.size > 0;
  }

  /** The source a client certificate is pinned to, if any. */
  sourceOfCertificate(der: Buffer | undefined): string | undefined {
    return der && der.length > 0 ? this.certificates.get(certificateFingerprint(der)) : undefined;
  }

  /** Throws ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED unless a sender bound to `bound` may send as MSH-3/MSH-4. */
  checkHl7(bound: string | undefined, sendingApplication: string, sendingFacility: string): void {
    const facility = namespaceId(sendingFacility);
    const application = namespaceId(sendingApplication);
    this.check(bound, this.facilities.get(facility), `MSH-4 ${facility}`, 'MSH-4');
    this.check(bound, this.applications.get(application), `MSH-3 ${application}`, 'MSH-3');
  }

  /** Throws unless a sender bound to `bound` may send documents of `organization` ('root' or 'root^extension'). */
  checkCdaOrganization(bound: string | undefined, organization: string | undefined): void {
    if (organization === undefined) return;
    const claimant = this.organizations.get(organization) ?? this.organizations.get(organization.split('^', 1)[0]!);
    this.check(bound, claimant, `organization ${organization}`, '/ClinicalDocument/author');
  }

  private check(bound: string | undefined, claimant: string | undefined, what: string, location: string): void {
    if (claimant === undefined || claimant === bound) return;
    throw new AnchorlineError(
      'ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED',
      bound === undefined ? `${what} belongs to source ${claimant}; send it with a credential or connection bound to that source` : `${what} belongs to source ${claimant}, not to ${bound}`,
      { location },
    );
  }
}
