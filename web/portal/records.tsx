/**
 * My records: each Patient record linked to the person (one per facility that registered them), read with
 * Patient/$everything, shown grouped by kind with one plain line per resource and the facility it came from.
 */
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote, Panel } from '../src/components.tsx';
import { portalJson, samePath } from './api.ts';
import { facilityOf, groupByType, humanName, type FhirResource } from './describe.ts';
import type { Me } from './me.ts';

interface SearchBundle {
  total?: number;
  link?: Array<{ relation?: string; url?: string }>;
  entry?: Array<{ resource?: FhirResource }>;
}

/** Pages of $everything read at most: a record is rarely larger, and the page says when it was cut short. */
const MAX_PAGES = 10;
const PAGE_SIZE = 100;

/** Every entry of a search and its next pages, up to `maxPages`; `complete` says whether the last page was reached. */
export async function readAllPages(path: string, maxPages: number): Promise<{ resources: FhirResource[]; complete: boolean }> {
  const resources: FhirResource[] = [];
  let next: string | undefined = path;
  for (let page = 0; next !== undefined && page < maxPages; page++) {
    const bundle: SearchBundle = await portalJson<SearchBundle>(next);
    for (const entry of bundle.entry ?? []) if (entry.resource) resources.push(entry.resource);
    const link = bundle.link?.find((l) => l.relation === 'next')?.url;
    next = link ? samePath(link) : undefined;
  }
  return { resources, complete: next === undefined };
}

export function MyRecords({ me }: { me: Me }) {
  return (
    <div class="view" data-testid="my-records">
      <header class="view-head">
        <h1>My records</h1>
      </header>
      <p class="muted">
        {me.patients.length === 1 ? 'One hospital shares your record here.' : `${me.patients.length} hospitals share your records here.`} What each one sent is shown as it sent it.
      </p>
      {me.patients.map((patient) => (
        <PatientRecord key={patient} patient={patient} />
      ))}
    </div>
  );
}

function PatientRecord({ patient }: { patient: string }) {
  const [record, setRecord] = useState<{ resources: FhirResource[]; complete: boolean } | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const id = patient.slice('Patient/'.length);
    readAllPages(`/fhir/Patient/${encodeURIComponent(id)}/$everything?_count=${PAGE_SIZE}`, MAX_PAGES).then(setRecord, setError);
  }, [patient]);
  const own = record?.resources.find((r) => r.resourceType === 'Patient' && `Patient/${r.id}` === patient);
  const facility = own ? facilityOf(own) : undefined;
  const title = own ? `${humanName(own.name) ?? 'Your record'}${facility ? ` at ${facility}` : ''}` : patient;
  return (
    <section class="record" data-testid="patient-record" data-patient={patient} data-facility={facility ?? ''} aria-busy={record === undefined && error === undefined}>
      <Panel title={<span data-testid="record-title">{title}</span>}>
        <ErrorNote error={error} testid="record-error" />
        {record === undefined && error === undefined ? <p class="muted" role="status">Loading…</p> : null}
        {record?.resources.length === 0 ? <p class="muted">Nothing in this record that you may see.</p> : null}
        {record
          ? groupByType(record.resources).map((group) => (
              <section key={group.type} class="record-group" data-testid="record-group" data-type={group.type}>
                <h2>
                  {group.title} <span class="muted small">({group.lines.length})</span>
                </h2>
                <ul class="record-lines">
                  {group.lines.map((line) => (
                    <li key={`${line.type}/${line.id}`} data-testid="record-line" data-resource={`${line.type}/${line.id}`}>
                      <span class="record-what">{line.what}</span>
                      {line.when ? <span class="record-when muted small">{line.when}</span> : null}
                      {line.facility ? <span class="record-facility small" data-testid="record-facility">{line.facility}</span> : null}
                    </li>
                  ))}
                </ul>
              </section>
            ))
          : null}
        {record && !record.complete ? <p class="muted small">Only the first {MAX_PAGES * PAGE_SIZE} entries are shown.</p> : null}
      </Panel>
    </section>
  );
}

/**
 * A label for each of the person's Patient records, "김민지 at SNUH", read once per view; the reference itself until
 * it is read, or if it cannot be.
 */
export function usePatientLabels(patients: readonly string[]): Record<string, string> {
  const [labels, setLabels] = useState<Record<string, string>>({});
  useEffect(() => {
    for (const patient of patients) {
      portalJson<FhirResource>(`/fhir/${patient.split('/').map(encodeURIComponent).join('/')}`).then(
        (resource) => {
          const facility = facilityOf(resource);
          setLabels((known) => ({ ...known, [patient]: `${humanName(resource.name) ?? patient}${facility ? ` at ${facility}` : ''}` }));
        },
        () => undefined,
      );
    }
  }, [patients.join(' ')]);
  return Object.fromEntries(patients.map((p) => [p, labels[p] ?? p]));
}
