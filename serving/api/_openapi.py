"""The service's OpenAPI document: BentoML's, completed to match what the service answers.

BentoML documents each API as a ``POST`` with BentoML's own error schemas (``detail`` a string) and
no authentication. :func:`service_openapi` adds the HTTP bearer security scheme to every protected
operation (so the page's Authorize button works), documents each error status the route can answer
(400, 401, 403, 404, 405, 413, 415, 500, 503) with the one :class:`~serving.scoring.schemas.ErrorResponse`
schema the service sends, adds the ``GET`` form of the read-only routes, and declares OpenAPI 3.1
(the JSON Schema dialect of pydantic's schemas, with ``null`` as a type). Its ``info`` is the service's own:
BentoML's shows five badges, images a browser would fetch from shields.io, readthedocs.org and badgen.net.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel

from serving.auth import ROLE_PERMISSIONS, Permission
from serving.scoring.schemas import ErrorResponse

REF = "#/components/schemas/{model}"
#: The page's introduction (text only: an image or a link to elsewhere would be fetched or followed).
INFO = (
    "Re-offending risk at intake, mid-term and release: a calibrated probability, the risk band and the "
    "management tier, the reasons in plain words, stored in an audit trail. Every route needs a bearer token "
    "(Authorize, above); each role may call only its routes, named in each route's description."
)
_ERRORS = {
    400: "refused input: the fields and what is wrong with them",
    401: "no token, a malformed Authorization header, or an unknown or revoked token",
    403: "the token's role may not call this route",
    404: "no such record (person, office, assessment, decision or review run)",
    409: "conflicts with the stored state (the tier the person already has, a decision already taken)",
    405: "method not allowed on this route",
    413: "request body (or batch) over the configured limit",
    415: "the request body is not application/json",
    422: "valid JSON that the case store refuses (an event after as_of or before birth, an unknown reason code)",
    500: "a fault of the service (see the server log)",
    503: "no model serves the requested stage",
}


def service_openapi(
    spec: Mapping[str, Any],
    *,
    permissions: Mapping[str, Permission],
    read_only: Mapping[str, tuple[str, ...]],
    errors: Mapping[str, tuple[int, ...]],
    models: Mapping[str, tuple[type[BaseModel], type[BaseModel]]],
) -> dict[str, Any]:
    """BentoML's document ``spec`` with security, error answers and GET forms; ``spec`` is not changed.

    Parameters
    ----------
    permissions
        Protected route -> the permission it needs (named in each operation's description).
    read_only
        Route -> the query fields of its GET form.
    errors
        Route -> the error statuses it answers besides 400, 401, 403, 405 and 500.
    models
        Route -> (request model, answer model): their pydantic JSON Schemas replace BentoML's copies,
        which drop ``null`` from optional fields.
    """
    doc = copy.deepcopy(dict(spec))
    doc["openapi"] = "3.1.0"
    doc["info"] = {"title": "Re-offending risk assessment", "version": _version(), "description": INFO}
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template=REF)
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):  # BentoML's, no longer used
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from `riskctl token --role ROLE --user NAME`; each role may call only its routes",
        }
    }
    for path, permission in permissions.items():
        item = doc["paths"][path]
        post = item["post"]
        roles = ", ".join(r.value for r, granted in ROLE_PERMISSIONS.items() if permission in granted)
        post["description"] = f"{post.get('description', '')}\n\nRole: {roles}.".strip()
        post["security"] = [{"bearer": []}]
        if path in models:
            request, answer = models[path]
            post["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_ref(request, "validation", schemas)}},
            }
            post["responses"]["200"] = {
                "description": answer.__doc__.strip().splitlines()[0] if answer.__doc__ else "the answer",
                "content": {"application/json": {"schema": _schema_ref(answer, "serialization", schemas)}},
            }
        post["responses"] = {
            "200": _ok(post["responses"]),
            **_error_answers((400, 401, 403, 405, 500, *errors.get(path, ()))),
        }
        if path in read_only:
            item["get"] = _get_form(post, path, read_only[path], schemas)
    return doc


def _version() -> str:
    try:
        return metadata.version("reoffence-risk")
    except metadata.PackageNotFoundError:  # the code run from a folder without the package installed
        return "unknown"


def _schema_ref(
    model: type[BaseModel], mode: Literal["validation", "serialization"], schemas: dict[str, Any]
) -> dict[str, str]:
    """Put ``model``'s JSON Schema (and the models it uses) into ``schemas``; a reference to it."""
    schema = model.model_json_schema(ref_template=REF, mode=mode)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _ok(responses: Mapping[Any, Any]) -> Any:
    return responses.get("200", responses.get(200))


def _error_answers(statuses: tuple[int, ...]) -> dict[str, Any]:
    return {
        str(status): {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
        }
        for status in sorted(set(statuses))
    }


def _get_form(
    post: Mapping[str, Any], path: str, fields: tuple[str, ...], schemas: Mapping[str, Any]
) -> dict[str, Any]:
    """The GET operation of a read-only route: the request's fields as query parameters."""
    body = post.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in body:
        body = schemas.get(body["$ref"].rsplit("/", 1)[-1], {})
    properties, required = body.get("properties", {}), set(body.get("required", ()))
    statuses = tuple(int(s) for s in post["responses"] if s not in ("200", "413", "415"))
    return {
        "tags": post.get("tags", []),
        "description": post.get("description", ""),
        "security": post["security"],
        "operationId": f"{post.get('operationId', path.strip('/'))}__get",
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": {
                    k: v for k, v in properties.get(name, {"type": "string"}).items() if k not in ("title", "examples")
                },
                **({"example": properties[name]["examples"][0]} if properties.get(name, {}).get("examples") else {}),
            }
            for name in fields
        ],
        "responses": {"200": _ok(post["responses"]), **_error_answers((*statuses, 400))},
    }
