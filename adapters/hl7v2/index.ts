/** HL7 v2 at the door: the intake shared by MLLP and HTTP, and the wait for mapping in afterMapping ACK mode. */
export { Hl7Intake, senderKey, type BatchIntakeResult, type IntakeOptions, type IntakeResult, type ReceiveMeta } from './intake.ts';
export { MappingWaiter, type FinishedMessage } from './mapping-waiter.ts';
