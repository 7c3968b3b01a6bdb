/** HL7 v2 at the door: the codec, the parsed-message types, and the intake shared by MLLP and HTTP. */
export * from './codec.ts';
export * from './types.ts';
export { Hl7Intake, senderKey, type IntakeOptions, type IntakeResult, type ReceiveMeta } from './intake.ts';
export { MappingWaiter, type FinishedMessage } from './mapping-waiter.ts';
