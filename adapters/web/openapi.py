"""The OpenAPI 3.1 document of the web API, written by hand next to the routes (adapters/web/app.py).

tests/test_web_api.py checks real answers against these schemas: change both together.
"""

from __future__ import annotations

import copy

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict | None = None) -> dict:
    return _json(_ERROR, description, headers)


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
_ADMIN_ERRORS = {
    "401": _error("no or wrong admin token"),
    "403": _error("the admin API is off (no ANIFACE_ADMIN_TOKEN)"),
    "429": _error("too many requests from this address", _RETRY_AFTER),
}

_DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "aniface web API",
        "version": "1",
        "description": (
            "Names anime characters in pictures. The page at / uses this API.\n\n"
            "A browser is known by an anonymous id in the HttpOnly cookie `aniface_id` (set on the first "
            "answer): keep it, since a picture's faces can be corrected only with the cookie that uploaded "
            "it. POSTs from browsers must come from this origin (the `Origin` header is checked) and JSON "
            "POSTs must be `application/json`. POSTs and admin requests are rate limited per client "
            "address (429 with Retry-After). Every error is JSON: `{\"error\": {\"code\", \"message\"}}`."),
    },
    "paths": {
        "/api/identify": {
            "post": {
                "operationId": "identify",
                "summary": "Find and name every face in a picture, or name boxes drawn by hand",
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {"type": "string", "format": "binary",
                                          "description": "the picture: PNG, JPEG, WEBP, GIF, stickers..."},
                                "boxes": {"type": "string", "description": (
                                    "optional JSON list of [x, y, width, height] boxes in the picture's "
                                    "pixels (at most 20): only these regions are named, as hand-drawn faces")},
                            },
                        },
                    }},
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Identification"},
                                 "the faces (kind \"faces\") or none (kind \"no_face\")"),
                    "400": _error("no image field, or malformed boxes"),
                    "403": _error("a request from another site"),
                    "408": _error("the upload arrived too slowly (the body has a deadline)"),
                    "413": _error("the picture is larger than the upload limit"),
                    "415": _error("not a multipart/form-data request"),
                    "422": _error("the file is not a picture that can be read, or it is over the pixel limit"),
                    "429": _error("too many requests from this address", _RETRY_AFTER),
                    "503": _error("the recognizer is busy, its model server does not answer, or the server is "
                                  "stopping", _RETRY_AFTER),
                },
            },
        },
        "/api/corrections": {
            "post": {
                "operationId": "correct",
                "summary": "Say who a face is (a name), or which of its guesses is right (a candidate)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CorrectionRequest"}}},
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Acknowledgement"},
                                 "taken (ok true, stored before this answer), or not (ok false: the message "
                                 "says why; suggestions holds names it may have meant)"),
                    "400": _error("malformed request"),
                    "403": _error("a request from another site"),
                    "408": _error("the body arrived too slowly (it has a deadline)"),
                    "413": _error("the body is too large"),
                    "415": _error("not application/json"),
                    "429": _error("too many requests from this address", _RETRY_AFTER),
                    "503": _error("the server is stopping, or the correction cannot be stored now (error "
                                  "storage_unavailable: disk full, read-only database); nothing was stored",
                                  _RETRY_AFTER),
                },
            },
        },
        "/api/characters": {
            "get": {
                "operationId": "knownCharacters",
                "summary": "The characters the bot knows, for autocompletion",
                "parameters": [
                    {"name": "q", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "only names containing this text (those starting with it first)"},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 5000}},
                ],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Characters"}, "the names, sorted"),
                    "400": _error("limit is not a number"),
                },
            },
        },
        "/api/predictions/{prediction_id}/annotated.png": {
            "get": {
                "operationId": "annotatedPicture",
                "summary": "The picture with numbered boxes and names (for its uploader; kept a while in memory)",
                "parameters": [{"name": "prediction_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {
                    "200": {"description": "a PNG", "content": {"image/png": {
                        "schema": {"type": "string", "format": "binary"}}}},
                    "404": _error("not here (any more), or uploaded by someone else"),
                },
            },
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness: whether the server is up (it says nothing of the database; see /readyz)",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Health"}, "up"),
                    "503": _json({"$ref": "#/components/schemas/Health"}, "stopping"),
                },
            },
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: whether the server can take work, the database writable (a write in a "
                           "transaction that is rolled back)",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Ready"}, "ready"),
                    "503": _json({"$ref": "#/components/schemas/Ready"},
                                 "stopping, or the database cannot be written (reason says why)"),
                },
            },
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
            },
        },
        "/api/admin/corrections": {
            "get": {
                "operationId": "recentCorrections",
                "summary": "The latest corrections, newest first (no person in them)",
                "security": [{"adminToken": []}],
                "parameters": [{"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/RecentCorrections"}, "the corrections"),
                    "400": _error("limit is not a number"),
                    **_ADMIN_ERRORS,
                },
            },
        },
        "/api/admin/faces/{face_id}/crop.png": {
            "get": {
                "operationId": "faceCrop",
                "summary": "The crop of a stored face that the model saw",
                "security": [{"adminToken": []}],
                "parameters": [{"name": "face_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {
                    "200": {"description": "a PNG", "content": {"image/png": {
                        "schema": {"type": "string", "format": "binary"}}}},
                    "404": _error("no such face"),
                    **_ADMIN_ERRORS,
                },
            },
        },
        "/api/admin/export": {
            "get": {
                "operationId": "exportDataset",
                "summary": "The corrections as a training dataset (the zip `aniface export` writes)",
                "security": [{"adminToken": []}],
                "parameters": [
                    {"name": "since", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "only faces whose latest vote is at or after this date or ISO 8601 time"},
                    {"name": "min_votes", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1}},
                ],
                "responses": {
                    "200": {"description": "a zip: <character>/<sha256>.png and manifest.csv",
                            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                    "400": _error("bad since or min_votes"),
                    **_ADMIN_ERRORS,
                },
            },
        },
    },
    "components": {
        "securitySchemes": {
            "adminToken": {"type": "http", "scheme": "bearer",
                           "description": "the token in ANIFACE_ADMIN_TOKEN (or web.admin_token in the TOML file)"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "additionalProperties": False,
                "properties": {"error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "description": "stable, for programs: e.g. too_large, busy"},
                        "message": {"type": "string", "description": "for people"},
                    },
                }},
            },
            "Candidate": {
                "type": "object",
                "required": ["name", "display_name", "probability"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "description": "the label, as `aniface identify --json` gives it"},
                    "display_name": {"type": "string", "description": "how the name reads to a person"},
                    "probability": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
            "Face": {
                "type": "object",
                "required": ["id", "number", "box", "detection_score", "name", "display_name", "manual",
                             "guessed", "candidates"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "integer", "description": "the face_id to correct it with"},
                    "number": {"type": "integer", "minimum": 1, "description": "1-based, in reading order "
                               "(drawn boxes: in the order given)"},
                    "box": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
                            "description": "[x, y, width, height] in the picture's pixels (see image)"},
                    "name": {"type": ["string", "null"],
                             "description": "the best guess when it is confident enough, else null (unknown)"},
                    "display_name": {"type": ["string", "null"]},
                    "detection_score": {"type": "number", "minimum": 0, "maximum": 1,
                                        "description": "the detector's likelihood (1 for a box drawn by hand)"},
                    "manual": {"type": "boolean", "description": "a box drawn by hand"},
                    "guessed": {"type": "boolean",
                                "description": "no face was found for sure: the likeliest place for one, whose "
                                               "candidates are a guess (it is never named)"},
                    "candidates": {"type": "array", "maxItems": 5,
                                   "items": {"$ref": "#/components/schemas/Candidate"},
                                   "description": "the top 5, best first (empty with no model)"},
                },
            },
            "Identification": {
                "type": "object",
                "required": ["kind", "message", "prediction_id", "model_version", "can_name", "image",
                             "annotated_url", "faces"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"type": "string", "enum": ["faces", "no_face"]},
                    "message": {"type": "string", "description": "the answer in words, as the chat bots say it"},
                    "prediction_id": {"type": ["integer", "null"]},
                    "model_version": {"type": ["string", "null"]},
                    "can_name": {"type": "boolean", "description": "false: faces are found but not named"},
                    "image": {
                        "type": ["object", "null"],
                        "required": ["width", "height"],
                        "additionalProperties": False,
                        "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
                        "description": "the size of the decoded picture the boxes refer to (null with no face)",
                    },
                    "annotated_url": {"type": ["string", "null"],
                                      "description": "the picture with numbered boxes and names, as a PNG"},
                    "faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
                },
            },
            "CorrectionRequest": {
                "type": "object",
                "required": ["face_id"],
                "properties": {
                    "face_id": {"type": "integer", "description": "a face id from /api/identify"},
                    "name": {"type": "string", "description": "who the face is (send this or candidate)"},
                    "candidate": {"type": "integer", "minimum": 1, "maximum": 5,
                                  "description": "which of the face's guesses is right, 1-based "
                                                 "(1 confirms the best guess)"},
                },
            },
            "Acknowledgement": {
                "type": "object",
                "required": ["ok", "message", "suggestions", "face_id"],
                "additionalProperties": False,
                "properties": {
                    "ok": {"type": "boolean"},
                    "message": {"type": "string"},
                    "suggestions": {"type": "array", "items": {"type": "string"},
                                    "description": "known names it may have meant (send one, or the same "
                                                   "name again to add it as a new character)"},
                    "face_id": {"type": "integer"},
                },
            },
            "Characters": {
                "type": "object",
                "required": ["characters", "total"],
                "additionalProperties": False,
                "properties": {
                    "characters": {"type": "array", "items": {"type": "string"}},
                    "total": {"type": "integer", "description": "how many matched, before the limit"},
                },
            },
            "Ready": {
                "type": "object",
                "required": ["status"],
                "additionalProperties": False,
                "properties": {
                    "status": {"type": "string", "enum": ["ready", "unavailable", "stopping"]},
                    "reason": {"type": "string"},
                },
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "additionalProperties": False,
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "stopping"]},
                    "model_version": {"type": ["string", "null"]},
                    "model": {"type": ["string", "null"],
                              "description": "the hub reference the model came from (null: a folder, or none)"},
                    "model_revision": {"type": ["string", "null"],
                                       "description": "the hub commit the model was fetched at"},
                    "can_name": {"type": "boolean"},
                    "known_characters": {"type": "integer"},
                    "event_loop_lag_ms": {
                        "type": "object",
                        "required": ["worst", "last_5_min"],
                        "additionalProperties": False,
                        "description": "How late the process's event loop ran (every chat and request waits that "
                                       "long): the worst since start, and over the last 5 minutes.",
                        "properties": {"worst": {"type": "integer"}, "last_5_min": {"type": "integer"}},
                    },
                    "applied_event_id": {"type": "integer", "description":
                                         "the newest gallery event (a correction taken by any replica) "
                                         "this process has learned"},
                },
            },
            "RecentCorrections": {
                "type": "object",
                "required": ["corrections"],
                "additionalProperties": False,
                "properties": {"corrections": {"type": "array", "items": {
                    "type": "object",
                    "required": ["at", "face_id", "face_number", "manual", "platform", "via", "verdict", "name",
                                 "display_name", "predicted_name", "predicted_display_name", "model_version",
                                 "crop_url"],
                    "additionalProperties": False,
                    "properties": {
                        "at": {"type": ["string", "null"], "description": "when the vote was cast or changed"},
                        "face_id": {"type": "integer"},
                        "face_number": {"type": "integer"},
                        "manual": {"type": "boolean"},
                        "platform": {"type": "string"},
                        "via": {"type": "string"},
                        "verdict": {"type": "string", "enum": ["is", "not"]},
                        "name": {"type": ["string", "null"], "description": "who people said it is"},
                        "display_name": {"type": ["string", "null"]},
                        "predicted_name": {"type": ["string", "null"], "description": "what the bot said"},
                        "predicted_display_name": {"type": ["string", "null"]},
                        "model_version": {"type": ["string", "null"]},
                        "model_revision": {"type": ["string", "null"],
                                           "description": "the hub commit of the shared model that answered"},
                        "crop_url": {"type": "string"},
                    },
                }}},
            },
        },
    },
}


def openapi_document() -> dict:
    """A copy of the document (callers may change theirs)."""
    return copy.deepcopy(_DOCUMENT)
