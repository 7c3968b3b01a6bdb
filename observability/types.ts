/**
 * What the pipeline reports to the engine's metrics, as narrow interfaces: adapters and workers depend on these
 * (and nothing else from observability/), so they never see prom-client or a registry. The engine passes them the
 * one EngineMetrics it created; a component given none reports nothing.
 *
 * Labels are protocols, outcomes and catalogue error codes: small, fixed sets. Never pass anything taken from a
 * message (a sender, a control id, a value): it would leak into the metrics and make the series unbounded.
 */

/** What an intake (HL7 v2 over MLLP or HTTP, C-CDA, DICOM) reports per message. */
export interface IntakeMetrics {
  /**
   * One message answered. `protocol`: 'hl7v2-mllp', 'hl7v2-http', 'cda', 'dicom-dimse' or 'dicom-stow'. `outcome`:
   * what the intake reported ('stored', 'duplicate', 'conflict', 'rejected', 'not-stored'). `errorCode`: the
   * ANCHORLINE_ERR_* code of a refusal, when there is one.
   */
  messageReceived(protocol: string, outcome: string, errorCode?: string): void;
  /** The time from a message's last byte arriving to its acknowledgment being written, in seconds. */
  ackSent(protocol: string, seconds: number): void;
}

/** What the MLLP listener reports about bytes and connections it refused (adapters/mllp/server.ts). */
export interface MllpMetrics {
  /**
   * Bytes dropped without an answer. `reason`: 'outside-frame' (between frames, not starting with 0x0B) or
   * 'unfinished-frame' (a frame abandoned by a new 0x0B, cut by the connection's end or by mllp.frameTimeoutMs).
   */
  mllpBytesDropped(reason: 'outside-frame' | 'unfinished-frame', bytes: number): void;
  /**
   * A connection the listener closed on its own. `reason`: 'peer-limit' and 'connection-limit' (refused at once),
   * 'evicted' (closed to admit another peer), 'frame-timeout', 'idle-timeout'.
   */
  mllpConnectionClosed(reason: 'peer-limit' | 'connection-limit' | 'evicted' | 'frame-timeout' | 'idle-timeout'): void;
}

/** What the ingest worker reports. */
export interface IngestMetrics {
  /** A message marked failed (a permanent mapping error, or out of attempts), by its ANCHORLINE_ERR_* code; counted once committed. */
  mappingFailed(errorCode: string): void;
  /** One mapping issue recorded on a message that was mapped, by its ANCHORLINE_ISSUE_* code; counted once committed. */
  mappingIssue(issueCode: string): void;
}
