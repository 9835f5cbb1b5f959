"""The OpenAPI 3.1 description of /api/v1, kept beside the views it describes."""

from __future__ import annotations

from typing import Any

from portal.api import openapi_footage
from portal.models import Role

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }


def build_openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tattletale API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `flask --app wsgi users token EMAIL`.",
                }
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details.",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"},
                    },
                    "required": ["title", "status"],
                },
                "Token": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "scopes": {
                            "type": "array",
                            "items": {"enum": [role.value for role in Role]},
                        },
                        "created_at": {"type": "string", "format": "date-time"},
                        "expires_at": {"type": ["string", "null"], "format": "date-time"},
                        "last_used_at": {"type": ["string", "null"], "format": "date-time"},
                        "state": {"enum": ["active", "expired", "revoked"]},
                    },
                    "required": ["id", "name", "scopes", "created_at", "state"],
                },
                "AuditChain": {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "boolean"},
                        "entries": {"type": "integer"},
                        "head": {"type": "string"},
                        "broken_at": {"type": ["integer", "null"]},
                        "reason": {"type": ["string", "null"]},
                    },
                    "required": ["ok", "entries", "head"],
                },
                "Me": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "email": {"type": "string", "format": "email"},
                        "display_name": {"type": "string"},
                        "roles": {
                            "type": "array",
                            "items": {"enum": [role.value for role in Role]},
                        },
                        "agency": {"type": "string"},
                    },
                    "required": ["id", "email", "roles", "agency"],
                },
                **openapi_footage.SCHEMAS,
            },
        },
        "paths": {
            "/me": {
                "get": {
                    "operationId": "getMe",
                    "summary": "The account the token belongs to.",
                    "responses": {
                        "200": {
                            "description": "The account.",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Me"}}
                            },
                        },
                        "401": _problem_response("No valid token."),
                    },
                }
            },
            "/tokens": {
                "get": {
                    "operationId": "listTokens",
                    "summary": "The caller's own API tokens, with scopes, expiry and last use.",
                    "responses": {
                        "200": {
                            "description": "The tokens (their secrets are never stored).",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "tokens": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Token"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "401": _problem_response("No valid token."),
                    },
                }
            },
            "/audit/verify": {
                "get": {
                    "operationId": "verifyAuditChain",
                    "summary": "Check the audit log's hash chain (admins; audited).",
                    "responses": {
                        "200": {
                            "description": "The chain's state.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/AuditChain"}
                                }
                            },
                        },
                        "401": _problem_response("No valid token."),
                        "403": _problem_response("The token does not act as an admin."),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document."}},
                }
            },
            **openapi_footage.PATHS,
        },
    }
