/**
 * The medical equipment section converted by mappers/cda/sections/medical-equipment.ts: every product instance a
 * Device (its UDI as udiCarrier, read into device identifier, lot, serial number and dates when it is GS1), supplied
 * equipment a DeviceUseStatement, an implanting procedure a Procedure with the Device as focal device. Crafted edge
 * cases (test/fixtures/cda/sections/medical-equipment-edge-cases.xml) and real documents.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { udiCarrier } from '../../mappers/cda/sections/medical-equipment.ts';
import { byIdentifier, convertBytes, convertCorpusDocument, convertSectionFixture, itIsValidAndRepeatable, problemsOf, resolve, resourcesOf } from '../support/cda-section-documents.ts';

const TYPES = ['Device', 'DeviceUseStatement', 'Procedure', 'Organization', 'Practitioner', 'PractitionerRole', 'Location'];

describe('medical equipment (crafted edge cases)', () => {
  const conversion = convertSectionFixture('medical-equipment-edge-cases');
  const devices = resourcesOf(conversion, 'Device');

  itIsValidAndRepeatable('medical-equipment-edge-cases', conversion, TYPES);

  it('makes an implanting procedure a Procedure whose focal device is the implant, read from its GS1 UDI', () => {
    const procedure = byIdentifier(resourcesOf(conversion, 'Procedure'), 'PROC-PM')!;
    expect(procedure).toMatchObject({ status: 'completed', performedDateTime: '2021-04-02', bodySite: [{ coding: [{ code: '80891009' }] }] });
    const device = resolve(conversion, (procedure.focalDevice as Array<{ manipulated: unknown }>)[0]!.manipulated)!;
    expect(device).toEqual({
      resourceType: 'Device',
      id: device.id,
      udiCarrier: [{
        deviceIdentifier: '00643169007222',
        issuer: 'http://hl7.org/fhir/NamingSystem/gs1-di',
        jurisdiction: 'http://hl7.org/fhir/NamingSystem/fda-udi',
        carrierHRF: '(01)00643169007222(17)260100(10)LOT77(21)BLC200461H',
      }],
      lotNumber: 'LOT77',
      serialNumber: 'BLC200461H',
      // Expiry day 00: the month.
      expirationDate: '2026-01',
      type: { coding: [{ system: 'http://snomed.info/sct', code: '704708004', display: 'Cardiac resynchronization therapy implantable pacemaker' }], text: 'Cardiac resynchronization therapy implantable pacemaker' },
      patient: { reference: `Patient/${conversion.patientId}` },
    });
  });

  it('reads a Non-Medicinal Supply Activity sent as an act (classCode ACT) as the supply its template says it is', () => {
    // As ONC's Netsmart myEvolv sample sends it.
    const raw = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda', 'sections', 'medical-equipment-edge-cases.xml'), 'utf8');
    const at = raw.indexOf('<supply classCode="SPLY" moodCode="EVN">\n              <templateId root="2.16.840.1.113883.10.20.22.4.50"');
    const end = raw.indexOf('</supply>', at);
    expect(at).toBeGreaterThan(0);
    const asAct = raw.slice(0, at) + '<act classCode="ACT" moodCode="EVN">' + raw.slice(at + '<supply classCode="SPLY" moodCode="EVN">'.length, end) + '</act>' + raw.slice(end + '</supply>'.length);
    const converted = convertBytes(Buffer.from(asAct, 'utf8'));
    const wheelchair = byIdentifier(resourcesOf(converted, 'DeviceUseStatement'), 'SUP-WC');
    expect(wheelchair).toMatchObject({ status: 'active', timingPeriod: { start: '2023-01-15' } });
    expect(converted.issues.filter((issue) => issue.severity === 'warning')).toEqual(conversion.issues.filter((issue) => issue.severity === 'warning'));
  });

  it('makes supplied equipment a DeviceUseStatement, and the same UDI named again the same Device', () => {
    const wheelchair = byIdentifier(resourcesOf(conversion, 'DeviceUseStatement'), 'SUP-WC')!;
    expect(wheelchair).toMatchObject({ status: 'active', timingPeriod: { start: '2023-01-15' } });
    expect(resolve(conversion, wheelchair.device)).toMatchObject({
      udiCarrier: [{ issuer: 'http://hl7.org/fhir/NamingSystem/hibcc-dI', carrierHRF: '+H123PARTNO1/$$3231231BATCHN' }],
      manufacturer: 'Good Health Durable Medical Equipment',
      type: { coding: [{ code: '58938008' }] },
    });
    const pacemakerUse = byIdentifier(resourcesOf(conversion, 'DeviceUseStatement'), 'SUP-PM')!;
    const procedure = byIdentifier(resourcesOf(conversion, 'Procedure'), 'PROC-PM')!;
    expect(pacemakerUse.device).toEqual((procedure.focalDevice as Array<{ manipulated: unknown }>)[0]!.manipulated);
    expect(devices).toHaveLength(2);
  });

  it('reports a supply naming no device, and makes "no implanted devices" a procedure not done naming no Device', () => {
    expect(conversion.issues).toContainEqual(expect.objectContaining({ code: 'entries-not-converted', location: '/ClinicalDocument/component/structuredBody/component[1]/section/entry[4]/supply' }));
    expect(byIdentifier(resourcesOf(conversion, 'Procedure'), 'PROC-NONE')).toMatchObject({ status: 'not-done', usedCode: [{ coding: [{ code: '40388003' }] }] });
    expect(byIdentifier(resourcesOf(conversion, 'Procedure'), 'PROC-NONE')!.focalDevice).toBeUndefined();
  });

  it('reads the UDI forms FDA accredits', () => {
    expect(udiCarrier('(01)51022222233336(11)141231(17)150707(10)A213B1(21)1234').production).toEqual({ lotNumber: 'A213B1', serialNumber: '1234', expirationDate: '2015-07-07', manufactureDate: '2014-12-31' });
    expect(udiCarrier('=/A9999XYZ100T0944=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123').carrier).toMatchObject({ issuer: 'http://hl7.org/fhir/NamingSystem/iccbba-other-di' });
    expect(udiCarrier('00643169007222').carrier).toEqual({ deviceIdentifier: '00643169007222', jurisdiction: 'http://hl7.org/fhir/NamingSystem/fda-udi' });
    // A date no calendar has is left out rather than guessed.
    expect(udiCarrier('(01)00643169007222(17)261331').production).toEqual({});
  });
});

describe('medical equipment (public documents)', () => {
  it('HL7 CCD: three pieces of equipment sharing one product instance id are three Devices', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/CCD.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const uses = resourcesOf(conversion, 'DeviceUseStatement');
    expect(uses).toHaveLength(3);
    const types = uses.map((use) => (resolve(conversion, use.device)!.type as { coding: Array<{ code: string }> }).coding[0]!.code).sort();
    expect(types).toEqual(['14106009', '303406003', '87405001']);
    // Two supplies of the organizer share one id too: two statements all the same.
    expect(new Set(uses.map((use) => use.id)).size).toBe(3);
  });

  it('ONC validator sample: an implanted pacemaker identified by its UDI', () => {
    const conversion = convertCorpusDocument('onc-reference-ccda-validator/170.315_b1_toc_amb_ccd_r21_sample1_v8.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const [device] = resourcesOf(conversion, 'Device');
    expect(device).toMatchObject({
      udiCarrier: [{ deviceIdentifier: '00643169007222', carrierHRF: '(01)00643169007222(17)160128(21)BLC200461H' }],
      serialNumber: 'BLC200461H',
      expirationDate: '2016-01-28',
      type: { coding: [{ code: '704708004' }] },
    });
    const procedure = resourcesOf(conversion, 'Procedure').find((candidate) => JSON.stringify(candidate.focalDevice ?? []).includes(device!.id))!;
    expect(procedure).toMatchObject({ status: 'completed', performedPeriod: { start: '2011-10-05' }, bodySite: [{ coding: [{ code: '9454009' }] }] });
  });
});
