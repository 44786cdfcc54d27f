"""Events checked against docs/asyncapi.yaml (the machine-readable docs/events.md)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

ASYNCAPI = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
URI = "urn:cti:asyncapi"


@cache
def document() -> dict[str, Any]:
    return yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    return Registry().with_resource(URI, DRAFT202012.create_resource(document()))


@cache
def message_validator(name: str) -> Draft202012Validator:
    """The validator of one message of the document (an event type, hello, reply...)."""
    if name not in document()["components"]["messages"]:
        raise KeyError(f"{name!r} is not documented in {ASYNCAPI.name}")
    schema = {"$ref": f"{URI}#/components/messages/{name}/payload"}
    return Draft202012Validator(schema, registry=_registry())


def plugin_event_validator(data_schema: dict[str, Any]) -> Draft202012Validator:
    """A plugin's event: the documented envelope, ``data`` by the schema the plugin
    declared in its manifest (cti/plugins/api.py PluginManifest.events)."""
    schema = {"allOf": [{"$ref": f"{URI}#/components/schemas/Envelope"},
                        {"properties": {"data": data_schema}}]}
    return Draft202012Validator(schema, registry=_registry())


def event_errors(event: dict[str, Any],
                 plugin_schemas: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """What is wrong with an event against its documented schema ([] if nothing);
    ``plugin_schemas``: the data schemas of the event types plugins declared."""
    type_ = str(event.get("type"))
    try:
        validator = message_validator(type_)
    except KeyError as e:
        if plugin_schemas is None or type_ not in plugin_schemas:
            return [str(e)]
        validator = plugin_event_validator(plugin_schemas[type_])
    return [f"{'/'.join(str(p) for p in err.absolute_path) or '(event)'}: {err.message}"
            for err in validator.iter_errors(event)]
