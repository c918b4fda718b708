//! The OpenAPI 3.1 document of the admin API, served at `/openapi.json`.

use serde_json::{Value, json};

/// The `{"error": {"code", "message"}}` answer for `status`, as a response object.
fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

/// The error answers every app endpoint can give, plus `extra`.
fn responses(success: &[(&str, Value)], extra: &[(&str, &str)]) -> Value {
    let mut out = serde_json::Map::new();
    for (code, value) in success {
        out.insert((*code).to_owned(), value.clone());
    }
    for (code, description) in [
        ("400", "malformed query or body"),
        ("401", "no token, or a token that is not accepted"),
        ("403", "the app belongs to another tenant than the token's, or (PUT) a provider writing to the server's files"),
        ("404", "no such app config, provider or endpoint"),
        (
            "422",
            "an invalid id, config value, or credentials that fail the check",
        ),
        (
            "503",
            "the config database failed, or the request ran out of time",
        ),
    ]
    .iter()
    .chain(extra)
    {
        out.insert((*code).to_owned(), error(description));
    }
    Value::Object(out)
}

fn app_id() -> Value {
    json!({
        "name": "app_id", "in": "path", "required": true,
        "description": "The app: ASCII letters, digits, `_`, `-` and `.`, starting with a letter or a digit",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"},
        "example": "app-1"
    })
}

fn provider_path() -> Value {
    json!({
        "name": "provider", "in": "path", "required": true,
        "description": "A registered provider (see GET /providers)",
        "schema": {"type": "string", "enum": provider_names()}
    })
}

/// The registered providers' names, when the document is made.
fn provider_names() -> Vec<&'static str> {
    ops_core::provider::registered()
        .iter()
        .map(|f| f.name)
        .collect()
}

fn scope(with_provider: bool) -> Vec<Value> {
    let mut out = vec![json!({
        "name": "tenant", "in": "query", "required": false,
        "description": "The tenant to act for: an admin token's choice (default: the app's owner); a tenant token may only name its own",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}
    })];
    if with_provider {
        out.push(json!({
            "name": "provider", "in": "query", "required": false,
            "description": "Only this provider of the app",
            "schema": {"type": "string", "enum": provider_names()}
        }));
    }
    out
}

fn params(path: &[Value], with_provider: bool) -> Value {
    let mut all = path.to_vec();
    all.extend(scope(with_provider));
    Value::Array(all)
}

fn schemas() -> Value {
    let nullable_string = json!({"type": ["string", "null"]});
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}}
        },
        "ErrorDetail": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
        },
        "Providers": {
            "type": "object", "required": ["providers"],
            "properties": {"providers": {"type": "array", "items": {
                "type": "object", "required": ["name", "display_name", "fields"],
                "properties": {
                    "name": {"type": "string"},
                    "display_name": {"type": "string"},
                    "fields": {"type": "array", "items": {
                        "type": "object", "required": ["name", "secret", "required", "default"],
                        "properties": {
                            "name": {"type": "string"},
                            "secret": {"type": "boolean"},
                            "required": {"type": "boolean"},
                            "default": nullable_string
                        }
                    }}
                }
            }}}
        },
        "ConfigView": {
            "type": "object",
            "required": ["provider", "enabled", "version", "updated_at", "values", "secret_keys", "key_versions"],
            "properties": {
                "provider": {"type": "string"},
                "enabled": {"type": "boolean"},
                "version": {"type": "integer"},
                "updated_at": {"type": "string", "format": "date-time"},
                "values": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "Every stored key; secrets obfuscated"},
                "secret_keys": {"type": "array", "items": {"type": "string"}},
                "key_versions": {"type": "object", "additionalProperties": {"type": "integer"}}
            }
        },
        "AppConfigs": {
            "type": "object",
            "required": ["app_id", "tenant_id", "enabled", "active_providers", "configs"],
            "properties": {
                "app_id": {"type": "string"},
                "tenant_id": nullable_string,
                "enabled": {"type": "boolean"},
                "active_providers": {"type": "array", "items": {"type": "string"}},
                "configs": {"type": "array", "items": {"$ref": "#/components/schemas/ConfigView"}}
            }
        },
        "AppStatus": {
            "type": "object",
            "required": ["app_id", "tenant_id", "enabled", "active_providers", "providers"],
            "properties": {
                "app_id": {"type": "string"},
                "tenant_id": nullable_string,
                "enabled": {"type": "boolean"},
                "active_providers": {"type": "array", "items": {"type": "string"}},
                "providers": {"type": "array", "items": {
                    "type": "object", "required": ["provider", "enabled", "version"],
                    "properties": {
                        "provider": {"type": "string"},
                        "enabled": {"type": "boolean"},
                        "version": {"type": "integer"}
                    }
                }}
            }
        },
        "ConfigUpdate": {
            "type": "object", "required": ["values"], "additionalProperties": false,
            "properties": {
                "values": {
                    "type": "object", "additionalProperties": {"type": "string"},
                    "description": "Keys to set; an empty string clears one; a secret sent back obfuscated (as shown) keeps the stored secret; keys left out keep their values"
                },
                "check": {"type": "boolean", "default": true,
                          "description": "Check the credentials with the provider before saving"}
            }
        },
        "Saved": {
            "type": "object", "required": ["saved", "app"],
            "properties": {
                "saved": {
                    "type": "object",
                    "required": ["provider", "version", "created", "checked", "project_key", "project_url"],
                    "properties": {
                        "provider": {"type": "string"},
                        "version": {"type": "integer"},
                        "created": {"type": "boolean"},
                        "checked": {"type": "boolean"},
                        "project_key": nullable_string,
                        "project_url": nullable_string
                    }
                },
                "app": {"$ref": "#/components/schemas/AppConfigs"}
            }
        },
        "CheckResults": {
            "type": "object", "required": ["ok", "results"],
            "properties": {
                "ok": {"type": "boolean"},
                "results": {"type": "array", "items": {
                    "type": "object", "required": ["provider", "ok"],
                    "properties": {
                        "provider": {"type": "string"},
                        "ok": {"type": "boolean"},
                        "project_key": nullable_string,
                        "project_url": nullable_string,
                        "project_error": nullable_string,
                        "error": {"$ref": "#/components/schemas/ErrorDetail"}
                    }
                }}
            }
        },
        "ProjectUrl": {
            "type": "object", "required": ["provider", "project_url"],
            "properties": {"provider": {"type": "string"}, "project_url": nullable_string}
        },
        "TestTrace": {
            "type": "object", "required": ["trace_id", "observations", "ok", "deliveries", "left_out"],
            "properties": {
                "trace_id": {"type": "string"},
                "observations": {"type": "integer"},
                "ok": {"type": "boolean"},
                "deliveries": {"type": "array", "items": {
                    "type": "object", "required": ["provider", "delivered", "error", "project_url", "project_error"],
                    "properties": {
                        "provider": {"type": "string"},
                        "delivered": {"type": "boolean"},
                        "error": nullable_string,
                        "project_url": nullable_string,
                        "project_error": nullable_string
                    }
                }},
                "left_out": {"type": "array", "items": {
                    "type": "object", "required": ["provider", "error"],
                    "properties": {
                        "provider": {"type": "string"},
                        "error": {"$ref": "#/components/schemas/ErrorDetail"}
                    }
                }}
            }
        }
    })
}

/// The OpenAPI 3.1 document of the admin API (paths relative to where the router is nested,
/// e.g. `/api/admin`).
pub fn document() -> Value {
    let app = app_id();
    let provider = provider_path();
    let bearer = json!([{"bearer": []}]);
    let body = json!({
        "required": true,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ConfigUpdate"}}}
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ops admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Per-app tracing config (Dify's console flow): providers, configs with write-only secrets, enable/disable, credential checks, project URL and test traces. Every app endpoint acts for the token's tenant only."
        },
        "security": bearer,
        "paths": {
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }},
            "/providers": {"get": {
                "operationId": "listProviders", "summary": "The registered providers and their fields",
                "responses": responses(&[("200", ok("The providers", "Providers"))], &[])
            }},
            "/apps/{app_id}/configs": {"get": {
                "operationId": "getAppConfigs", "summary": "The app's tracing state and configs, secrets obfuscated",
                "parameters": params(std::slice::from_ref(&app), true),
                "responses": responses(&[("200", ok("The app's configs", "AppConfigs"))], &[])
            }},
            "/apps/{app_id}/configs/{provider}": {
                "get": {
                    "operationId": "getConfig", "summary": "One config, secrets obfuscated",
                    "parameters": params(&[app.clone(), provider.clone()], false),
                    "responses": responses(&[("200", ok("The config", "AppConfigs"))], &[])
                },
                "put": {
                    "operationId": "putConfig", "summary": "Create or update one config (merged into the stored one)",
                    "parameters": params(&[app.clone(), provider.clone()], false),
                    "requestBody": body,
                    "responses": responses(
                        &[("200", ok("Updated", "Saved")), ("201", ok("Created", "Saved"))],
                        &[("409", "the config changed meanwhile; read it again"),
                          ("413", "the body is over the limit"),
                          ("415", "the body is not application/json")]
                    )
                },
                "delete": {
                    "operationId": "deleteConfig", "summary": "Delete one config",
                    "parameters": params(&[app.clone(), provider.clone()], false),
                    "responses": responses(&[("204", json!({"description": "Deleted"}))], &[])
                }
            },
            "/apps/{app_id}/configs/{provider}/project-url": {"get": {
                "operationId": "getProjectUrl", "summary": "Where to see the app's traces on the provider",
                "parameters": params(&[app.clone(), provider.clone()], false),
                "responses": responses(&[("200", ok("The project URL", "ProjectUrl"))], &[])
            }},
            "/apps/{app_id}/enable": {"post": {
                "operationId": "enable", "summary": "Turn tracing on, or add one configured provider (?provider=)",
                "parameters": params(std::slice::from_ref(&app), true),
                "responses": responses(&[("200", ok("The new state", "AppStatus"))],
                    &[("409", "no provider of the app is enabled")])
            }},
            "/apps/{app_id}/disable": {"post": {
                "operationId": "disable", "summary": "Turn tracing off (providers kept), or take one provider out (?provider=)",
                "parameters": params(std::slice::from_ref(&app), true),
                "responses": responses(&[("200", ok("The new state", "AppStatus"))], &[])
            }},
            "/apps/{app_id}/check": {"post": {
                "operationId": "check", "summary": "Check the stored credentials of the app's providers",
                "parameters": params(std::slice::from_ref(&app), true),
                "responses": responses(&[("200", ok("Each provider's result", "CheckResults"))], &[])
            }},
            "/apps/{app_id}/test-trace": {"post": {
                "operationId": "sendTestTrace", "summary": "Send a sample chatflow trace through the app's active providers",
                "parameters": params(std::slice::from_ref(&app), true),
                "responses": responses(&[("200", ok("Each provider's answer", "TestTrace"))],
                    &[("409", "tracing is off for the app, or the provider is not active")])
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "A token from OPS_ADMIN_TOKENS, bound to a tenant or to the admin role"}},
            "schemas": schemas()
        }
    })
}
