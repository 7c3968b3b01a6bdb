/**
 * POST /ingest/cda (scope `ingest`): one C-CDA document as the body (application/xml, text/xml or
 * application/cda+xml; a charset parameter, when sent, says how the bytes are encoded). The answer is an
 * OperationOutcome (adapters/cda/intake.ts says which status means what), with the headers the HL7 route sends:
 * `x-anchorline-message-id`, `x-anchorline-outcome`, `x-anchorline-error` on refusals, and `Location:
 * /admin/messages/{id}` for a stored document.
 *
 * The body parser is registered in this route's own scope: XML bodies are accepted here and nowhere else. Other
 * media types, including those the API parses elsewhere (JSON, text/plain for HL7 v2), are refused with 415 before
 * the body is read: checked in preParsing, since a parser that exists would otherwise fail on the XML first (a
 * document sent as application/json got 400 for invalid JSON).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { AnchorlineError } from '../errors/index.ts';
import type { CdaIntake } from '../adapters/cda/index.ts';
import { originLabel } from '../adapters/sources.ts';
import { FHIR_JSON } from './fhir.ts';

const CDA_MEDIA_TYPES = ['application/xml', 'text/xml', 'application/cda+xml'];

const INGEST_CDA_SCHEMA = {
  summary: 'Ingest one C-CDA document',
  description:
    'The body is one C-CDA document (a charset parameter, when sent, says how its bytes are encoded). The answer is an OperationOutcome: ' +
    '202 stored and queued for mapping (its mapping outcome and issues, what the conversion leaves out, are then at /admin/messages/{id}); 200 a resend of a stored document; ' +
    '409 ANCHORLINE_ERR_DUPLICATE_CONTROL_ID the same ClinicalDocument/id with other bytes; 4xx ANCHORLINE_ERR_CDA_* refused (documents with a DOCTYPE included), ' +
    '413 over cda.maxBytes; 503 not stored, send again. Headers: X-Anchorline-Message-Id, X-Anchorline-Outcome, X-Anchorline-Error, and Location for a stored document.',
  tags: ['ingest'],
  consumes: CDA_MEDIA_TYPES,
  body: { description: 'The C-CDA document (XML)' },
};

/** The request's media type and parameters; 415 unless it is one a C-CDA document is sent as. */
function cdaMediaType(contentType: string | undefined): string[] {
  const [mediaType, ...parameters] = (contentType ?? '').split(';').map((part) => part.trim());
  if (!CDA_MEDIA_TYPES.includes((mediaType ?? '').toLowerCase())) {
    throw new AnchorlineError('ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE', `send the C-CDA document with Content-Type ${CDA_MEDIA_TYPES.join(', ')}`);
  }
  return parameters;
}

export function registerCdaRoutes(app: FastifyInstance, intake: CdaIntake): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser(CDA_MEDIA_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    const preParsing = async (request: FastifyRequest, _reply: FastifyReply, payload: unknown): Promise<unknown> => {
      cdaMediaType(request.headers['content-type']);
      return payload;
    };
    scope.post('/ingest/cda', { schema: INGEST_CDA_SCHEMA, config: { scope: 'ingest' }, preParsing }, async (request, reply) => {
      const parameters = cdaMediaType(request.headers['content-type']);
      const body = request.body;
      if (!Buffer.isBuffer(body) || body.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'send the C-CDA document as the body');
      const charset = parameters.map((parameter) => /^charset\s*=\s*"?([^";]+)"?$/i.exec(parameter)?.[1]).find((value) => value !== undefined);

      const result = await intake.receive(body, {
        source: originLabel(`http:${request.ip}`, request.access?.principal.source),
        ...(request.access ? { apiKeyName: request.access.principal.name } : {}),
        ...(request.access?.principal.source ? { boundSource: request.access.principal.source } : {}),
        ...(charset ? { charsetParameter: charset } : {}),
      });
      if (result.errorCode) reply.header('x-anchorline-error', result.errorCode);
      if (result.messageId !== undefined) reply.header('x-anchorline-message-id', String(result.messageId));
      if (result.messageId !== undefined && (result.outcome === 'stored' || result.outcome === 'duplicate')) reply.header('location', `/admin/messages/${result.messageId}`);
      reply.header('x-anchorline-outcome', result.outcome);
      return reply.status(result.status).header('content-type', FHIR_JSON).send(result.body);
    });
  });
}
