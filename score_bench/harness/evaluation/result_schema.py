"""The JSON Schemas of the files a run writes (harness/evaluation/schemas/: results.json, samples.jsonl, grades.jsonl,
scale.json, and grade's input rows), versioned: every file written from SCHEMA_VERSION 1 on carries
`schema_version` (in a JSONL file, each row). Files written before versioning have none and are read as legacy
version 0: the schemas accept them when everything else matches.

Checking needs jsonschema (the schema or test extra); reading the schemas does not."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any, Iterator

from score_bench.harness.contracts.errors import InputError, extra_hint

__all__ = ["SCHEMA_VERSION", "SCHEMAS", "schema", "problems", "file_problems"]

SCHEMA_VERSION = 1
SCHEMAS = {"results": "results.schema.json", "samples": "samples.schema.json", "grades": "grades.schema.json",
           "scale": "scale.schema.json", "responses": "responses.schema.json"}
_DIRECTORY = Path(__file__).parent / "schemas"


def schema(name: str) -> dict:
    """The JSON Schema of one kind of file (a key of SCHEMAS), as a dict."""
    if name not in SCHEMAS:
        raise InputError(f"unknown schema '{name}'; available: {', '.join(SCHEMAS)}")
    return json.loads((_DIRECTORY / SCHEMAS[name]).read_text(encoding="utf-8"))


@cache
def _validator(name: str):
    try:
        import jsonschema
        from referencing import Registry, Resource
    except ImportError:
        raise InputError(f"checking a file against its schema needs jsonschema: {extra_hint('schema')}") from None
    shared = json.loads((_DIRECTORY / "common.schema.json").read_text(encoding="utf-8"))
    registry = Registry().with_resource(shared["$id"], Resource.from_contents(shared))
    document = schema(name)
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document, registry=registry)


def problems(name: str, document: Any) -> list[str]:
    """Every way `document` breaks schema `name`, one line each ("where: what"); empty when it conforms."""
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:300]}"
            for error in _validator(name).iter_errors(document)]


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, document): a JSON file as one document, a JSONL file (gzipped or not) as one per line."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        if path.name.removesuffix(".gz").endswith(".jsonl"):
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield f"line {number}", json.loads(line)
        else:
            yield "file", json.load(handle)


def file_problems(path: Path, name: str) -> list[str]:
    """Every way the file at `path` breaks schema `name` ("where: what"), e.g. a results.json or samples.jsonl.gz."""
    return [f"{path} {where}: {problem}" for where, document in _documents(Path(path))
            for problem in problems(name, document)]
