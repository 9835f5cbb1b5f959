"""OpenAPI description of the footage operations (cases, uploads, clips, versions)."""

from __future__ import annotations

from typing import Any

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ERRORS = {
    "401": _problem("No valid token."),
    "403": _problem("The token's user may not do this."),
    "404": _problem("No such object, or not visible to this user."),
    "422": _problem("A field is invalid; `field` names it."),
}

TUS_HEADERS = {
    "Tus-Resumable": {"schema": {"type": "string", "const": "1.0.0"}, "required": True},
}

SCHEMAS: dict[str, Any] = {
    "CaseInput": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "number": {"type": "string", "maxLength": 64},
            "title": {"type": "string", "maxLength": 200},
            "offense": {"type": "string", "maxLength": 120},
            "occurred_at": {"type": ["string", "null"], "format": "date-time"},
            "location_address": {"type": "string", "maxLength": 300},
            "latitude": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
            "longitude": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
            "public_summary": {"type": "string", "maxLength": 4000},
            "internal_notes": {"type": "string", "maxLength": 20000},
            "status": {"enum": ["open", "solved", "closed"]},
        },
    },
    "Case": {
        "allOf": [
            _ref("CaseInput"),
            {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "detectives": {"type": "array", "items": {"type": "string"}},
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
        ]
    },
    "EditPlan": {
        "type": "object",
        "description": "Times in seconds on the source timeline (poster_time: into the "
        "edited clip); rectangles in source display pixels.",
        "properties": {
            "trim_start": {"type": ["number", "null"]},
            "trim_end": {"type": ["number", "null"]},
            "blur": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "x": {"type": "integer"},
                        "y": {"type": "integer"},
                        "width": {"type": "integer"},
                        "height": {"type": "integer"},
                        "start": {"type": ["number", "null"]},
                        "end": {"type": ["number", "null"]},
                        "whole_frame": {"type": "boolean"},
                    },
                },
            },
            "audio": {"enum": ["keep", "mute", "strip"]},
            "caption": {
                "type": ["object", "null"],
                "properties": {"lines": {"type": "array", "items": {"type": "string"}}},
            },
            "watermark": {"type": "boolean", "description": "Add the agency's watermark."},
            "poster_time": {"type": ["number", "null"]},
        },
    },
    "ClipStatus": {
        "type": "object",
        "properties": {
            "clip": {"type": "object"},
            "jobs": {"type": "array", "items": {"type": "object"}},
            "versions": {"type": "array", "items": {"type": "object"}},
        },
    },
}

ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _path_param(name: str) -> dict[str, Any]:
    return {**ID, "name": name}


PATHS: dict[str, Any] = {
    "/cases": {
        "post": {
            "operationId": "createCase",
            "requestBody": {"content": {"application/json": {"schema": _ref("CaseInput")}}},
            "responses": {
                "201": _json(_ref("Case"), "Created."),
                **ERRORS,
                "409": _problem("The case number exists."),
            },
        },
        "get": {
            "operationId": "listCases",
            "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "schema": {"enum": ["open", "solved", "closed"]}},
                {
                    "name": "after",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "The `next` cursor of the previous page.",
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "cases": {"type": "array", "items": _ref("Case")},
                            "next": {"type": ["string", "null"]},
                        },
                    },
                    "One page of cases, newest first.",
                ),
                **ERRORS,
            },
        },
    },
    "/cases/{case_id}": {
        "parameters": [_path_param("case_id")],
        "get": {
            "operationId": "getCase",
            "responses": {"200": _json(_ref("Case"), "The case."), **ERRORS},
        },
        "patch": {
            "operationId": "updateCase",
            "requestBody": {"content": {"application/json": {"schema": _ref("CaseInput")}}},
            "responses": {"200": _json(_ref("Case"), "Updated."), **ERRORS},
        },
    },
    "/uploads": {
        "post": {
            "operationId": "createUpload",
            "summary": "tus 1.0 creation. Metadata keys: filename, filetype, case.",
            "parameters": [{"name": k, "in": "header", **v} for k, v in TUS_HEADERS.items()]
            + [
                {
                    "name": "Upload-Length",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                },
                {"name": "Upload-Metadata", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {
                "201": {"description": "Created; Location names the upload."},
                "400": _problem("A tus header is malformed; `field` names it."),
                "413": _problem("Larger than the limit."),
                "429": _problem("The user's unfinished uploads are at their quota."),
                "507": _problem("The staging store has no room for the declared length."),
                **ERRORS,
            },
        },
        "options": {"operationId": "tusOptions", "responses": {"204": {"description": "tus."}}},
    },
    "/uploads/{upload_id}": {
        "parameters": [_path_param("upload_id")],
        "head": {
            "operationId": "getUploadOffset",
            "responses": {
                "200": {"description": "Upload-Offset and Upload-Length."},
                "410": {"description": "Cancelled or expired."},
            },
        },
        "patch": {
            "operationId": "appendUpload",
            "requestBody": {
                "content": {
                    "application/offset+octet-stream": {
                        "schema": {"type": "string", "format": "binary"}
                    }
                }
            },
            "responses": {
                "204": {"description": "Stored; Upload-Offset is the new offset."},
                "400": _problem("A tus header is malformed; `field` names it."),
                "409": _problem("Wrong Upload-Offset."),
                "410": _problem("Cancelled or expired."),
                "460": _problem("Upload-Checksum mismatch."),
                **ERRORS,
            },
        },
        "delete": {"operationId": "cancelUpload", "responses": {"204": {"description": "Gone."}}},
    },
    "/cases/{case_id}/clips": {
        "parameters": [_path_param("case_id")],
        "post": {
            "operationId": "createClip",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"upload_id": {"type": "string"}},
                            "required": ["upload_id"],
                        }
                    },
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                }
            },
            "responses": {
                "201": _json(_ref("ClipStatus"), "The clip, ingesting."),
                **ERRORS,
                "409": _problem("The upload is unfinished or already used."),
            },
        },
    },
    "/clips/{clip_id}": {
        "parameters": [_path_param("clip_id")],
        "get": {
            "operationId": "getClip",
            "responses": {"200": _json(_ref("ClipStatus"), "Status, probe, versions."), **ERRORS},
        },
    },
    "/clips/{clip_id}/versions": {
        "parameters": [_path_param("clip_id")],
        "post": {
            "operationId": "createVersion",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"plan": _ref("EditPlan")},
                            "required": ["plan"],
                        }
                    }
                }
            },
            "responses": {"201": {"description": "The new version, queued."}, **ERRORS},
        },
    },
    "/versions/{version_id}/renditions/{name}": {
        "parameters": [_path_param("version_id"), _path_param("name")],
        "get": {
            "operationId": "getRendition",
            "responses": {"200": {"description": "The file (Range supported)."}, **ERRORS},
        },
    },
    "/versions/{version_id}/approval": {
        "parameters": [_path_param("version_id")],
        "post": {
            "operationId": "approveVersion",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "checklist": {
                                    "type": "object",
                                    "properties": {
                                        "bystanders_blurred": {"type": "boolean"},
                                        "no_juveniles": {"type": "boolean"},
                                        "investigation_safe": {"type": "boolean"},
                                    },
                                }
                            },
                            "required": ["checklist"],
                        }
                    }
                }
            },
            "responses": {
                "201": {"description": "Approved."},
                **ERRORS,
                "409": _problem("Already approved, or not rendered yet."),
            },
        },
        "delete": {
            "operationId": "revokeApproval",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"reason": {"type": "string"}},
                            "required": ["reason"],
                        }
                    }
                }
            },
            "responses": {"204": {"description": "Revoked."}, **ERRORS},
        },
    },
}
