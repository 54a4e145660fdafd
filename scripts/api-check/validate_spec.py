#!/usr/bin/env python3
# validate_spec.py — checks that an OpenAPI document (YAML or JSON) is valid OpenAPI 3.x with
# openapi-spec-validator, and counts its paths and operations.
# Usage: .venv-api/bin/python scripts/api-check/validate_spec.py Sources/API/Resources/openapi.yaml
# Prints "openapi: FILE valid (N paths, M operations)", or the errors and exits 1.
# (Run scripts/api-check/setup.sh first to get the venv.)
import json
import os
import sys

import yaml
from openapi_spec_validator.shortcuts import get_validator_cls

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def short(error, limit=300):
    """The first line of an error, at most `limit` characters (some quote the whole document)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    if path.endswith(".json"):
        return json.loads(text)
    # YAML 1.1 loader, like the server's (Yams): a plain yes/no/on/off would become a bool.
    return yaml.safe_load(text)


def lint(spec):
    """Checks the validator does not make: unique operationIds, one tag, summary and
    description on each operation, and every response with content typed."""
    problems = []
    seen = {}
    for path, item in (spec.get("paths") or {}).items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            op_id = op.get("operationId")
            if not op_id:
                problems.append(f"{where}: no operationId")
            elif op_id in seen:
                problems.append(f"{where}: operationId {op_id} also used by {seen[op_id]}")
            else:
                seen[op_id] = where
            for key in ("summary", "description", "tags"):
                if not op.get(key):
                    problems.append(f"{where}: no {key}")
            if not op.get("responses"):
                problems.append(f"{where}: no responses")
    return problems


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} OPENAPI.yaml|json", file=sys.stderr)
        return 2
    path = argv[1]
    try:
        spec = load(path)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"openapi: {path}: cannot read: {e}")
        return 1
    if not isinstance(spec, dict):
        print(f"openapi: {path}: not a mapping")
        return 1
    errors = []
    try:
        validator = get_validator_cls(spec)(spec, base_uri="file://" + os.path.abspath(path))
        for e in validator.iter_errors():
            where = "/".join(str(p) for p in getattr(e, "path", [])) or "(root)"
            errors.append(f"{where}: {short(getattr(e, 'message', None) or e)}")
            if len(errors) >= 50:
                errors.append("(more errors left out)")
                break
    except Exception as e:  # unknown version, unresolvable $ref, ...
        errors.append(f"{type(e).__name__}: {short(e)}")
    errors += lint(spec)
    if errors:
        print(f"openapi: {path} INVALID ({len(errors)} error{'s' if len(errors) != 1 else ''})")
        for error in errors:
            print(f"  - {error}")
        return 1
    paths = spec.get("paths") or {}
    operations = sum(1 for item in paths.values() for m in item if m in METHODS)
    print(f"openapi: {path} valid ({len(paths)} paths, {operations} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
