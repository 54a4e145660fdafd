#!/usr/bin/env python3
# check_responses.py — validates recorded HTTP answers of the Confine server against its
# OpenAPI document with openapi-core: the operation is found by path template and method, the
# status must be documented, the content type must match, the body must match the schema and
# documented required headers must be there.
#
# Usage: .venv-api/bin/python scripts/api-check/check_responses.py SPEC RECORD.jsonl
#   SPEC    the OpenAPI document (YAML or JSON), e.g. Sources/API/Resources/openapi.yaml
#   RECORD  one HTTP exchange per line:
#     {"method": "GET", "path": "/jobs/1?x=y", "request_content_type": null,
#      "request_body_base64": null, "status": 200,
#      "response_headers": {"content-type": "application/json", ...},   (names lowercase)
#      "response_body_base64": "..."}
#
# Paths that match no documented operation (unknown routes, or a known path with another
# method — the deliberate 404/405 probes) are checked as problem documents only: they must be
# application/problem+json errors shaped like components/schemas/Problem. A path with a
# trailing slash is checked as the same path without it (the contract: `/jobs/` == `/jobs`).
# Every problem document, documented or not, is also checked against the contract's rules:
# `status` member = HTTP status, a known `type` slug for that status, `instance` = the path,
# an Allow header on 405, Retry-After and `retry_after` on queue-full/shutting-down,
# WWW-Authenticate on 401, a `quota` member on 429 quota-exceeded.
# Date keys (`*_at`) must be RFC 3339 UTC with milliseconds and `+00:00`.
# An event stream (`text/event-stream`, the followed output) is checked event by event, as
# OpenAPI 3.2 (and schemathesis) read its `schema` on 3.1: each event, as an object of its
# fields (event, id, data), must match the schema, and its `data` the JSON schema the matching
# alternative names in `contentSchema`; headers are checked by openapi-core. Then the
# contract's rules: ids `S:E`, the `output` events of a stream following each other without a
# gap or an overlap with ids that count their bytes, and an `end` or `deleted` event last (or
# the shutdown comment). A collected file (`/executions/{id}/files/{path}`, whose `path` takes the
# rest of the path) must carry its SHA-256 as ETag and its length. A raw output answer (`application/octet-stream`) must carry
# X-Confine-Truncated and X-Confine-Total-Bytes.
#
# Prints "responses: N checked, K operations covered of M, F failures", the first 20
# failures, and the operations never exercised (informative). Exit 1 on any failure.
import base64
import json
import re
import sys
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from jsonschema import Draft202012Validator
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.validation.response import V31ResponseHeadersValidator
from openapi_core.validation.response.exceptions import MissingData

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_LISTED = 20

# The contract's problem slugs and their statuses.
SLUG_STATUS = {
    "malformed-json": {400},
    "invalid-parameter": {400},
    "incomplete-request": {400},
    "request-timeout": {408},
    "validation-failed": {422},
    "not-found": {404},
    "method-not-allowed": {405},
    "conflict": {409},
    "payload-too-large": {413},
    "unsupported-media-type": {415},
    "queue-full": {503},
    "not-ready": {503},
    "shutting-down": {503},
    "store-unavailable": {503},
    "disk-full": {503},
    "too-many-requests": {429},
    "unauthorized": {401},
    "forbidden": {403},
    "quota-exceeded": {429},
    "too-many-connections": {503},
    "range-not-satisfiable": {416},
    "idempotency-key-reused": {422},
    "idempotency-key-in-progress": {409},
    "internal": {500},
}
TYPE_BASE = "https://confine.dev/problems/"
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")


def load_spec(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)


def deref(node, root, depth=0):
    """`node` with local `$ref`s inlined (enough for the Problem schema)."""
    if depth > 20:
        return node
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
            target = root
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return deref({**target, **rest}, root, depth + 1)
        return {k: deref(v, root, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(v, root, depth + 1) for v in node]
    return node


class Template:
    """A documented path template, matched segment by segment."""

    def __init__(self, template, item):
        self.template = template
        self.methods = [m for m in METHODS if m in item]
        self.segments = [s for s in template.split("/") if s]
        self.literals = sum(1 for s in self.segments if not s.startswith("{"))
        self.names = [s[1:-1] for s in self.segments if s.startswith("{")]

    # Templates whose last parameter takes the rest of the path, slashes included.
    REST_OF_PATH = {"/executions/{id}/files/{path}"}

    def match(self, segments):
        if self.template in self.REST_OF_PATH and len(segments) > len(self.segments):
            segments = segments[:len(self.segments) - 1] + ["/".join(segments[len(self.segments) - 1:])]
        if len(segments) != len(self.segments):
            return None
        values = {}
        for t, p in zip(self.segments, segments):
            if t.startswith("{") and t.endswith("}"):
                if p == "":
                    return None
                values[t[1:-1]] = unquote(p)
            elif t != p:
                return None
        return values


class RecordedRequest:
    """openapi-core's Request protocol (plus path_pattern) for one recorded exchange."""

    def __init__(self, host_url, method, path, pattern, path_values, query, content_type, body):
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = host_url
        self.method = method.lower()
        self.path = path
        self.path_pattern = pattern
        self.full_url_pattern = host_url + pattern
        self.content_type = (content_type or "").lower()
        self.body = body
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(), cookie=ImmutableMultiDict(), path=path_values)


class RecordedResponse:
    """openapi-core's Response protocol for one recorded answer."""

    def __init__(self, status, headers, body):
        from werkzeug.datastructures import Headers

        self.status_code = status
        self.headers = Headers(list(headers.items()))
        self.content_type = (headers.get("content-type") or "").lower()
        self.data = body


def describe(error):
    """An openapi-core error in one line: the schema errors when there are some (not the
    whole value), else the error's own message."""
    schema_errors = []
    seen = set()
    cause = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        for schema_error in getattr(cause, "schema_errors", None) or []:
            # For oneOf/anyOf, the alternative that came closest says more than "not valid".
            deepest = schema_error
            if schema_error.context:
                from jsonschema.exceptions import best_match
                deepest = best_match(schema_error.context) or schema_error
            where = "/".join(str(p) for p in deepest.absolute_path) or "(body)"
            message = deepest.message if len(deepest.message) <= 200 else deepest.message[:197] + "..."
            schema_errors.append(f"{where}: {message}")
        cause = cause.__cause__ or cause.__context__
    if schema_errors:
        text = f"{type(error).__name__}: " + "; ".join(dict.fromkeys(schema_errors))
    else:
        text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 600 else text[:597] + "..."


def media_type(headers):
    return (headers.get("content-type") or "").split(";")[0].strip().lower()


def problem_checks(problem_validator, method, raw_path, status, headers, body):
    """The contract's rules for an error answer; a list of reasons (empty when fine).
    `problem_validator` checks the Problem schema too (None: openapi-core did)."""
    reasons = []
    if media_type(headers) != "application/problem+json":
        return [f"error answer with content-type {headers.get('content-type')!r}, not application/problem+json"]
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return [f"problem+json body is not JSON: {e}"]
    for e in (problem_validator.iter_errors(doc) if problem_validator else []):
        where = "/".join(str(p) for p in e.absolute_path) or "(body)"
        reasons.append(f"problem {where}: {e.message}")
    if not isinstance(doc, dict):
        return reasons or ["problem body is not a JSON object"]
    if doc.get("status") != status:
        reasons.append(f"problem status member {doc.get('status')!r} != HTTP status {status}")
    kind = doc.get("type")
    if isinstance(kind, str) and kind.startswith(TYPE_BASE):
        slug = kind[len(TYPE_BASE):]
        if slug not in SLUG_STATUS:
            reasons.append(f"problem type slug {slug!r} is not one of the contract's")
        elif status not in SLUG_STATUS[slug]:
            reasons.append(f"problem type {slug!r} with status {status} (contract: {sorted(SLUG_STATUS[slug])})")
        if slug in ("queue-full", "shutting-down", "disk-full"):
            if "retry-after" not in headers:
                reasons.append(f"{slug} without a Retry-After header")
            if not isinstance(doc.get("retry_after"), int):
                reasons.append(f"{slug} without an integer retry_after member")
            elif headers.get("retry-after", "").strip() != str(doc["retry_after"]):
                reasons.append(f"retry_after {doc['retry_after']} != Retry-After {headers.get('retry-after')!r}")
        if slug == "payload-too-large" and not re.search(r"\d", str(doc.get("detail", ""))):
            reasons.append("payload-too-large detail does not name the limit in bytes")
        if slug == "not-ready" and not isinstance(doc.get("checks"), dict):
            reasons.append("not-ready without a checks member")
        if slug == "unauthorized" and not headers.get("www-authenticate", "").startswith("Bearer realm="):
            reasons.append("unauthorized without a WWW-Authenticate: Bearer header")
        if slug == "quota-exceeded" and doc.get("quota") not in ("max_active", "policies", "max_policy", "max_priority"):
            reasons.append("quota-exceeded without a quota member naming the quota")
    if status == 405 and "allow" not in headers:
        reasons.append("405 without an Allow header")
    instance = doc.get("instance")
    path_only = urlsplit(raw_path).path
    if isinstance(instance, str) and instance not in (path_only, unquote(path_only)):
        reasons.append(f"problem instance {instance!r} != request path {path_only!r}")
    return reasons


EVENT_ID_RE = re.compile(r"^([0-9]+):([0-9]+)$")
SHUTDOWN_COMMENT = "the server is shutting down"


def parse_event_stream(text):
    """The events of a text/event-stream body: a list of dicts (event, id, data lines,
    comments), in order, per the WHATWG parsing rules (fields split at the first colon, one
    leading space dropped, a blank line ends an event)."""
    events, current, comments = [], {}, []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            current.setdefault("data", []).append(value)
        else:
            current[name] = value
    if current:
        events.append(current)
    return events, comments


class EventSchema:
    """A text/event-stream media type's per-event schema: the whole (oneOf of event objects)
    and, per event name (`properties.event.const` of an alternative), the `contentSchema` of
    its `data`."""

    def __init__(self, schema, root):
        schema = deref(schema, root)
        self.validator = Draft202012Validator(schema)
        self.data = {}
        for alternative in schema.get("oneOf", [schema]):
            properties = alternative.get("properties", {})
            name = properties.get("event", {}).get("const")
            content = properties.get("data", {}).get("contentSchema")
            if name is not None:
                self.data[name] = Draft202012Validator(content) if content is not None else None


def event_stream_checks(text, events_schema):
    """The rules for a followed output (see the header); a list of reasons."""
    reasons = []
    events, comments = parse_event_stream(text)
    positions = {}
    last = None
    for number, event in enumerate(events, 1):
        if "data" not in event:
            continue  # `retry:` alone: not an event
        kind = event.get("event", "message")
        where = f"event {number} ({kind})"
        last = kind
        fields = {"event": kind, "data": "\n".join(event["data"])}
        if "id" in event:
            fields["id"] = event["id"]
        for e in events_schema.validator.iter_errors(fields):
            reasons.append(f"{where}: {e.message[:200]}")
        if kind not in events_schema.data:
            reasons.append(f"{where}: not one of the documented events {sorted(events_schema.data)}")
            continue
        if len(event["data"]) != 1:
            reasons.append(f"{where}: {len(event['data'])} data lines, expected one JSON line")
            continue
        try:
            data = json.loads(event["data"][0])
        except ValueError as e:
            reasons.append(f"{where}: data is not JSON: {e}")
            continue
        if events_schema.data[kind] is not None:
            for e in events_schema.data[kind].iter_errors(data):
                path = "/".join(str(p) for p in e.absolute_path) or "(data)"
                reasons.append(f"{where}: {path}: {e.message[:200]}")
        reasons += [f"{where}: {r}" for r in date_checks(data)]
        match = EVENT_ID_RE.match(event.get("id", ""))
        if not match:
            reasons.append(f"{where}: id {event.get('id')!r} is not S:E")
            continue
        ident = {"stdout": int(match.group(1)), "stderr": int(match.group(2))}
        if kind == "output" and isinstance(data, dict) and data.get("stream") in ident:
            stream = data["stream"]
            try:
                size = len(base64.b64decode(data["data"], validate=True)) if data.get("encoding") == "base64" \
                    else len(str(data.get("data", "")).encode("utf-8"))
            except ValueError as e:
                reasons.append(f"{where}: data is not base64: {e}")
                continue
            if stream in positions and data.get("offset") != positions[stream]:
                reasons.append(f"{where}: {stream} offset {data.get('offset')} after {positions[stream]} bytes (a gap or an overlap)")
            if ident[stream] != data.get("offset", 0) + size:
                reasons.append(f"{where}: id {event['id']} does not count the event's {size} bytes from offset {data.get('offset')}")
            positions[stream] = ident[stream]
        for stream, value in ident.items():
            if stream in positions and value != positions[stream]:
                reasons.append(f"{where}: id {event['id']} disagrees with the {positions[stream]} {stream} bytes sent")
    if last not in ("end", "deleted") and not any(c.startswith(SHUTDOWN_COMMENT) for c in comments):
        reasons.append(f"the event stream ends with {last!r}, not with an end or deleted event")
    return reasons


def date_checks(value, where="(body)"):
    """Every `*_at` string in a JSON value has the contract's date form."""
    reasons = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_at") and isinstance(item, str) and not DATE_RE.match(item):
                reasons.append(f"{where}/{key}: date {item!r} is not YYYY-MM-DDTHH:MM:SS.mmm+00:00")
            reasons += date_checks(item, f"{where}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reasons += date_checks(item, f"{where}/{i}")
    return reasons


def main(argv):
    if len(argv) != 3:
        print(f"usage: {argv[0]} OPENAPI.yaml RECORD.jsonl", file=sys.stderr)
        return 2
    spec_path, record_path = argv[1], argv[2]
    spec = load_spec(spec_path)
    servers = spec.get("servers") or [{"url": "http://127.0.0.1:8000"}]
    host_url = servers[0]["url"].rstrip("/")

    extra = {
        "application/problem+json": json_loads,
        # `type: string, format: binary`: any bytes are fine; openapi-core's 3.1 validator wants
        # a str, so the bytes are handed over one character per byte.
        "application/octet-stream": lambda value, **parameters: value.decode("latin-1"),
        "application/yaml": lambda value, **parameters: yaml.safe_load(value),
        "text/yaml": lambda value, **parameters: yaml.safe_load(value),
        # The dashboard's files (`type: string`): text.
        "text/javascript": lambda value, **parameters: value.decode("utf-8"),
        "text/css": lambda value, **parameters: value.decode("utf-8"),
        "image/svg+xml": lambda value, **parameters: value.decode("utf-8"),
    }
    openapi = OpenAPI.from_dict(spec, config=Config(extra_media_type_deserializers=extra))
    problem_schema = deref(spec["components"]["schemas"]["Problem"], spec)
    problem_validator = Draft202012Validator(problem_schema)

    # The per-event schemas of each operation's text/event-stream answers, by status.
    event_schemas = {}
    for path, item in (spec.get("paths") or {}).items():
        for method in METHODS:
            for status, response in ((item.get(method) or {}).get("responses") or {}).items():
                media = (deref(response, spec).get("content") or {}).get("text/event-stream")
                if media and "schema" in media:
                    event_schemas[(method, path, str(status))] = EventSchema(media["schema"], spec)
    headers_validator = V31ResponseHeadersValidator(openapi.spec)

    templates = [Template(path, item) for path, item in (spec.get("paths") or {}).items()]
    operations = {(m, t.template): (spec["paths"][t.template][m].get("operationId") or f"{m.upper()} {t.template}")
                  for t in templates for m in t.methods}
    covered = set()
    failures = []
    checked = 0

    with open(record_path, "r", encoding="utf-8") as f:
        lines = f.readlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            method = str(rec["method"]).lower()
            raw_path = str(rec["path"])
            status = int(rec["status"])
            headers = {str(k).lower(): str(v) for k, v in (rec.get("response_headers") or {}).items()}
            body = base64.b64decode(rec.get("response_body_base64") or "")
            request_body = base64.b64decode(rec["request_body_base64"]) if rec.get("request_body_base64") else None
        except (ValueError, KeyError, TypeError) as e:
            failures.append(("?", f"record line {number}", "?", f"unreadable record: {e}"))
            continue
        if method in ("head", "options"):
            # HEAD answers are their GET's without a body and preflights are CORS's, neither
            # in the document: Tests/APITests/HTTPHabitsTests.swift checks them.
            continue
        checked += 1
        reasons = []
        split = urlsplit(raw_path)
        path = split.path or "/"
        normalized = path.rstrip("/") or "/"
        segments = [s for s in normalized.split("/") if s]

        # The documented operation: templates with this method, most literal segments first.
        found = None
        for t in sorted(templates, key=lambda t: -t.literals):
            values = t.match(segments)
            if values is not None and method in t.methods:
                found = (t, values)
                break

        if found is None:
            # An unknown route or method: only a problem document is right.
            if status < 400:
                reasons.append(f"undocumented route answered {status}, not a problem")
            else:
                reasons += problem_checks(problem_validator, method, raw_path, status, headers, body)
        else:
            template, values = found
            covered.add((method, template.template))
            query = parse_qsl(split.query, keep_blank_values=True)
            request = RecordedRequest(host_url, method, normalized, template.template, values, query,
                                      rec.get("request_content_type"), request_body)
            response = RecordedResponse(status, headers, body)
            events_schema = event_schemas.get((method, template.template, str(status)))
            try:
                if media_type(headers) == "text/event-stream" and events_schema is not None:
                    # The events are checked one by one below; openapi-core checks the headers.
                    headers_validator.validate(request, response)
                else:
                    openapi.validate_response(request, response)
            except MissingData:
                # An empty stream is a valid binary body (an execution that wrote nothing).
                if media_type(headers) != "application/octet-stream":
                    reasons.append("the body is empty")
            except Exception as e:  # every openapi-core validation error
                reasons.append(describe(e))
            if status >= 400:
                # The schema was checked by openapi-core; the contract's rules are checked here.
                reasons += problem_checks(None, method, raw_path, status, headers, body)
            elif media_type(headers) == "text/event-stream":
                if events_schema is None:
                    reasons.append(f"an event stream where the document has none for status {status}")
                else:
                    try:
                        reasons += event_stream_checks(body.decode("utf-8"), events_schema)
                    except UnicodeDecodeError as e:
                        reasons.append(f"the event stream is not UTF-8: {e}")
            elif media_type(headers) == "application/octet-stream" and template.template.endswith("/files/{path}"):
                if not re.fullmatch(r'"[0-9a-f]{64}"', headers.get("etag", "")):
                    reasons.append(f"a collected file without its SHA-256 ETag: {headers.get('etag')!r}")
                if headers.get("content-length") != str(len(body)):
                    reasons.append(f"a collected file whose Content-Length {headers.get('content-length')!r} != {len(body)} bytes")
            elif media_type(headers) == "application/octet-stream":
                for name in ("x-confine-truncated", "x-confine-total-bytes"):
                    if name not in headers:
                        reasons.append(f"raw output without the {name} header")
            elif media_type(headers).endswith("json"):
                try:
                    reasons += date_checks(json.loads(body.decode("utf-8")))
                except (UnicodeDecodeError, ValueError):
                    pass  # reported by openapi-core
        for reason in reasons:
            failures.append((method.upper(), raw_path, status, reason))

    print(f"responses: {checked} checked, {len(covered)} operations covered of {len(operations)}, "
          f"{len(failures)} failures")
    for method, path, status, reason in failures[:MAX_LISTED]:
        print(f"  FAIL {method} {path} -> {status}: {reason}")
    if len(failures) > MAX_LISTED:
        print(f"  ... and {len(failures) - MAX_LISTED} more failures")
    missing = sorted((t, m) for (m, t) in operations if (m, t) not in covered)
    if missing:
        print(f"never exercised ({len(missing)}):")
        for template, method in missing:
            print(f"  {operations[(method, template)]} ({method.upper()} {template})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
