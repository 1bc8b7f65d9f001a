"""/openapi.json, built from the route table and each handler's `@endpoint`."""

from __future__ import annotations

import re

import pydantic
from aiohttp import web
from pydantic.json_schema import models_json_schema

from chatserver.api.endpoint import handler_endpoint
from chatserver.errors import of_status

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "human readable message"},
        "code": {"type": "string", "description": "snake_case reason"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}
REF = "#/components/schemas/{model}"


def _models(app: web.Application) -> list[type[pydantic.BaseModel]]:
    found: dict[str, type[pydantic.BaseModel]] = {}
    for route in app.router.routes():
        info = handler_endpoint(route.handler)
        if info is None:
            continue
        for model in (info.body, info.form, *info.responses.values()):
            if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
                found[model.__name__] = model
    return list(found.values())


def _query_parameters(model: type[pydantic.BaseModel]) -> list[dict]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        if "anyOf" in prop:
            prop = next(p for p in prop["anyOf"] if p.get("type") != "null") | {
                k: v for k, v in prop.items() if k != "anyOf"}
        prop.pop("title", None)
        if prop.get("default", "") is None:
            del prop["default"]
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        params.append(param)
    return params


def build_openapi(app: web.Application, title: str, version: str) -> dict:
    _, defs = models_json_schema([(m, "serialization") for m in _models(app)], ref_template=REF)
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        info = handler_endpoint(route.handler)
        if info is None or route.method == "HEAD":
            continue
        assert route.resource is not None, "every route in the table belongs to a resource"
        path = route.resource.canonical
        operation: dict = {
            "summary": info.summary,
            "tags": [info.tag],
            "operationId": route.handler.__name__,
            "responses": {},
        }
        if info.description:
            operation["description"] = info.description
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
            for name in re.findall(r"{(\w+)}", path)
        ]
        if info.query:
            parameters += _query_parameters(info.query)
        if parameters:
            operation["parameters"] = parameters
        content = {}
        if info.body:
            content["application/json"] = {"schema": {"$ref": REF.format(model=info.body.__name__)}}
        if info.form:
            content["application/x-www-form-urlencoded"] = {"schema": {"$ref": REF.format(model=info.form.__name__)}}
        if info.multipart:
            content["multipart/form-data"] = {"schema": info.multipart}
        if content:
            operation["requestBody"] = {"required": True, "content": content}
        if path.startswith("/v1/"):
            operation["security"] = [{"bearer": []}]
        if not info.public and path.startswith(("/api/", "/ws/")):
            operation["security"] = [{"bearer": []}]
            info.responses.setdefault(401, "missing, malformed or expired token")
        for status, answer in sorted(info.responses.items()):
            operation["responses"][str(status)] = _response(status, answer)
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Self-hosted AI chat backend. Errors always have the Error shape."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "oauth2", "flows": {"password": {"tokenUrl": "/api/auth/login", "scopes": {}}}},
            },
        },
    }


def _response(status: int, answer) -> dict:
    if isinstance(answer, type) and issubclass(answer, pydantic.BaseModel):
        return {"description": answer.__doc__ or answer.__name__,
                "content": {"application/json": {"schema": {"$ref": REF.format(model=answer.__name__)}}}}
    if isinstance(answer, dict):
        return answer
    if status >= 400:
        return {"description": answer or of_status(status).code,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"description": answer or "no content"}
