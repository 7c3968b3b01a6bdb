-- 0018_users: people who sign in, the apps they sign in through, and the sign-in server's state.
--
-- user_account: a person's account (store/users.ts). `role` says what the person is to the records; `fhir_user` is
--   the FHIR resource that is this person (SMART fhirUser); `patients` the Patient records a patient is (one per
--   facility) or a representative acts for; `organization`, `member_of` and `roles` are what consents and
--   break-the-glass rules name people by. `password_hash` is a scrypt hash with its parameters and salt (null: the
--   person signs in only through the external identity provider, by `external_subject`). A disabled account keeps its
--   row, so that audit trails still name it.
-- sign_in_app: SMART apps (OAuth clients of the authorization-code grant). A public app has no secret and must use
--   PKCE; a confidential app's secret is derived from the engine's sign-in secret and `secret_salt` (store/users.ts),
--   so that the database alone does not hold it.
-- oidc_payload: what the OpenID Connect provider keeps between requests (sessions, interactions, authorization
--   codes, refresh tokens, grants, and the SMART launch context of a grant), by model and id, each with its expiry.
--   Rows past `expires_at` are never read and are deleted by the provider's sweep.

CREATE TABLE user_account (
  id                bigserial   PRIMARY KEY,
  username          text        NOT NULL UNIQUE,
  password_hash     text,
  role              text        NOT NULL CHECK (role IN ('patient', 'representative', 'practitioner', 'registration')),
  fhir_user         text        NOT NULL CHECK (fhir_user ~ '^(Patient|RelatedPerson|Practitioner)/[A-Za-z0-9.-]{1,64}$'),
  display_name      text        NOT NULL,
  patients          text[]      NOT NULL DEFAULT '{}',
  organization      text,
  member_of         text[]      NOT NULL DEFAULT '{}',
  roles             text[]      NOT NULL DEFAULT '{}',
  external_subject  text        UNIQUE,
  disabled          boolean     NOT NULL DEFAULT false,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sign_in_app (
  client_id      text        PRIMARY KEY,
  name           text        NOT NULL,
  redirect_uris  text[]      NOT NULL CHECK (cardinality(redirect_uris) > 0),
  confidential   boolean     NOT NULL,
  secret_salt    bytea,
  built_in       boolean     NOT NULL DEFAULT false,
  disabled       boolean     NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CHECK (confidential = (secret_salt IS NOT NULL))
);

CREATE TABLE oidc_payload (
  model        text        NOT NULL,
  id           text        NOT NULL,
  payload      jsonb       NOT NULL,
  grant_id     text,
  uid          text,
  user_code    text,
  expires_at   timestamptz,
  consumed_at  timestamptz,
  PRIMARY KEY (model, id)
);
CREATE INDEX oidc_payload_grant ON oidc_payload (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oidc_payload_uid ON oidc_payload (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX oidc_payload_user_code ON oidc_payload (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX oidc_payload_expiry ON oidc_payload (expires_at) WHERE expires_at IS NOT NULL;
