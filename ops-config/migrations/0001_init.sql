-- ops-config schema, portable between SQLite and PostgreSQL.
-- Times are Unix milliseconds (BIGINT) so both databases store them alike.

-- Each app's tracing switch. One row per app, created with its first provider config.
CREATE TABLE ops_app_tracing (
    app_id     TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- One config row per (app, provider). `enabled` puts the provider in the app's provider list.
-- `plain_config` holds the other keys as a JSON object; `sealed_config` the secret keys as a
-- JSON object of `enc:v1:k<version>:...` ciphertexts. `version` grows on every change.
CREATE TABLE ops_trace_config (
    app_id        TEXT    NOT NULL REFERENCES ops_app_tracing (app_id) ON DELETE CASCADE,
    provider      TEXT    NOT NULL,
    tenant_id     TEXT    NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT FALSE,
    plain_config  TEXT    NOT NULL,
    sealed_config TEXT    NOT NULL,
    version       BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (app_id, provider)
);

CREATE INDEX ops_trace_config_tenant ON ops_trace_config (tenant_id);
