#!/usr/bin/python3
"""Checks hwLedger's OpenAPI descriptions (proto/openapi.yaml, proto/openapi-agent.yaml) against
the routes the binaries register and against real responses.

  openapi_check.py routes SPEC ROUTES_JSON
      ROUTES_JSON (a file, or - for stdin): a JSON array of
      {"method": "GET", "path": "/v1/jobs/{id}", "role": "viewer", "body_limit": 65536}
      as `hwledger-server routes --json` / `hwledger-agent routes --json` print them. Exit 1,
      listing each difference, when a route is in the code and not in the spec or the other way
      round, or when role / body_limit differ from x-hwl-role / x-hwl-body-limit (compared only
      when the JSON has them; a body_limit of 0 means the default, the spec's
      info.x-hwl-default-body-limit).
  openapi_check.py validate SPEC RECORDS_JSONL
      Each line: {"method": "GET", "path": "/v1/hosts?limit=2", "status": 200,
      "content_type": "application/json", "body": "<text>"}. The path (query stripped) is matched
      to a path template, the status to a response (or `default`), the content type to one the
      response lists; a JSON body is parsed and validated against its schema (JSON Schema 2020-12,
      $ref into the spec's components). Exit 1 listing every failure with its record.
  openapi_check.py lint SPEC...
      The spec itself: YAML, openapi 3.1.x, every $ref resolves, every operation has x-hwl-role
      (a known role) and x-hwl-body-limit, responses, and declared path parameters; every schema
      is a valid 2020-12 schema.

Exit codes: 0 all good, 1 differences or failures, 2 usage or unreadable input, 77 the YAML or
JSON Schema module is missing.
Needs only Debian's python3-yaml and python3-jsonschema (4.10 or later).
"""

import json
import re
import sys
import urllib.parse

try:
    import jsonschema
    import yaml
except ImportError as e:  # ctest reads 77 as skipped
    print(f"SKIP: {e} (install Debian's python3-yaml and python3-jsonschema)", file=sys.stderr)
    sys.exit(77)

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ROLES = {"public", "viewer", "operator", "admin", "host", "metrics", "server"}
DEFAULT_BODY_LIMIT = 1048576
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class UsageError(Exception):
    pass


def load_spec(path):
    try:
        with open(path, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise UsageError(f"{path}: not an OpenAPI document (no paths)")
    return spec


def pointer(spec, ref):
    """The node a local $ref ("#/components/schemas/X") names; KeyError when there is none."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise KeyError(f"not a local reference: {ref!r}")
    node = spec
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(ref)
    return node


def deref(spec, node, seen=None):
    """Follows $ref chains of non-schema objects (responses, parameters)."""
    seen = seen or set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise KeyError(f"reference cycle at {ref}")
        seen.add(ref)
        node = pointer(spec, ref)
    return node


def operations(spec):
    """(METHOD, template, operation) for every operation in the spec."""
    for template, item in spec["paths"].items():
        item = deref(spec, item)
        if not isinstance(item, dict):
            continue
        for m in METHODS:
            if isinstance(item.get(m), dict):
                yield m.upper(), template, item[m]


def segments(path):
    """Like the server's splitPath: empty segments dropped."""
    return [s for s in path.split("/") if s]


def norm_template(path):
    return "/" + "/".join("{}" if re.fullmatch(r"\{[^/{}]+\}", s) else s for s in segments(path))


def match_template(spec, concrete):
    """The spec's path template for a concrete path (fewest parameters wins), or None."""
    segs = [urllib.parse.unquote(s) for s in segments(concrete)]
    best = None
    for template in spec["paths"]:
        tsegs = segments(template)
        if len(tsegs) != len(segs):
            continue
        params = 0
        for t, s in zip(tsegs, segs):
            if re.fullmatch(r"\{[^/{}]+\}", t):
                params += 1
            elif t != s:
                break
        else:
            if best is None or params < best[0]:
                best = (params, template)
    return best[1] if best else None


def validator_for(spec, schema):
    """A 2020-12 validator whose root carries the spec's components, so that
    "#/components/schemas/X" resolves whatever jsonschema's reference machinery is."""
    root = dict(schema) if isinstance(schema, dict) else {"allOf": [schema]}
    root.setdefault("$schema", SCHEMA_DIALECT)
    if "components" in spec:
        root["components"] = spec["components"]
    return jsonschema.Draft202012Validator(root)


def media_essence(ct):
    return (ct or "").split(";", 1)[0].strip().lower()


def is_json(essence):
    return essence == "application/json" or essence.endswith("+json")


def media_matches(spec_key, essence):
    k = media_essence(spec_key)
    if k in ("*/*", essence):
        return True
    return k.endswith("/*") and essence.startswith(k[:-1])


def response_for(responses, status):
    for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
        for k, v in responses.items():
            if str(k) == key:
                return str(k), v
    return None, None


# --- routes ---------------------------------------------------------------------------------


def cmd_routes(spec_path, routes_path):
    spec = load_spec(spec_path)
    try:
        if routes_path == "-":
            routes = json.load(sys.stdin)
        else:
            with open(routes_path, encoding="utf-8") as f:
                routes = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read routes {routes_path}: {e}") from e
    if not isinstance(routes, list) or not all(
        isinstance(r, dict) and isinstance(r.get("method"), str) and isinstance(r.get("path"), str)
        for r in routes
    ):
        raise UsageError("routes: expected a JSON array of {\"method\", \"path\", ...} objects")
    default_limit = spec.get("info", {}).get("x-hwl-default-body-limit", DEFAULT_BODY_LIMIT)

    in_spec = {}
    for method, template, op in operations(spec):
        in_spec[(method, norm_template(template))] = (template, op)
    in_code = {}
    problems = []
    for r in routes:
        key = (r["method"].upper(), norm_template(r["path"]))
        if key in in_code:
            problems.append(f"listed twice by the code: {key[0]} {r['path']}")
        in_code[key] = r

    for key, r in sorted(in_code.items()):
        if key not in in_spec:
            problems.append(f"in the code, not in the spec: {key[0]} {r['path']}")
            continue
        template, op = in_spec[key]
        where = f"{key[0]} {template}"
        if "role" in r and r["role"] is not None and r["role"] != op.get("x-hwl-role"):
            problems.append(
                f"{where}: role {r['role']!r} in the code, x-hwl-role {op.get('x-hwl-role')!r} in the spec"
            )
        if "body_limit" in r and r["body_limit"] is not None:
            code_limit = r["body_limit"] or default_limit
            spec_limit = op.get("x-hwl-body-limit")
            if code_limit != spec_limit:
                problems.append(
                    f"{where}: body_limit {r['body_limit']} in the code"
                    + (f" (the default, {default_limit})" if r["body_limit"] == 0 else "")
                    + f", x-hwl-body-limit {spec_limit!r} in the spec"
                )
    for key, (template, _) in sorted(in_spec.items()):
        if key not in in_code:
            problems.append(f"in the spec, not in the code: {key[0]} {template}")

    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        print(f"openapi routes: {len(problems)} differences between the code and {spec_path}")
        return 1
    print(f"openapi routes: {len(in_code)} routes match {spec_path}")
    return 0


# --- validate -------------------------------------------------------------------------------


def check_record(spec, rec, validators):
    """The failures of one record (a list of strings)."""
    for k, t in (("method", str), ("path", str), ("status", int)):
        if not isinstance(rec.get(k), t) or isinstance(rec.get(k), bool):
            return [f"record has no valid {k!r}"]
    method = rec["method"].upper()
    path = urllib.parse.urlsplit(rec["path"]).path if "://" in rec["path"] else rec["path"].split("?", 1)[0]
    template = match_template(spec, path)
    if template is None:
        return [f"no path in the spec matches {path}"]
    item = deref(spec, spec["paths"][template])
    op = item.get(method.lower())
    if not isinstance(op, dict):
        return [f"{method} is not described for {template}"]
    code, resp = response_for(op.get("responses", {}), rec["status"])
    if resp is None:
        listed = ", ".join(str(k) for k in op.get("responses", {}))
        return [f"status {rec['status']} is not described for {method} {template} (described: {listed})"]
    resp = deref(spec, resp)
    content = resp.get("content") or {}
    essence = media_essence(rec.get("content_type"))
    if not content:
        return []
    key = next((k for k in content if media_matches(k, essence)), None)
    if key is None:
        return [
            f"content type {rec.get('content_type')!r} is not listed for {method} {template} "
            f"{code} (listed: {', '.join(content)})"
        ]
    if not is_json(essence):
        return []
    try:
        body = json.loads(rec.get("body", ""))
    except ValueError as e:
        return [f"body is not JSON: {e}"]
    schema = (content[key] or {}).get("schema")
    if schema is None:
        return []
    vkey = (template, method, code, key)
    if vkey not in validators:
        validators[vkey] = validator_for(spec, schema)
    errors = sorted(validators[vkey].iter_errors(body), key=lambda e: list(e.absolute_path))
    out = []
    for e in errors:
        where = "".join(f"[{p!r}]" for p in e.absolute_path) or "(body)"
        msg = e.message if len(e.message) <= 300 else e.message[:300] + "..."
        out.append(f"{where}: {msg} (schema {'/'.join(str(p) for p in e.absolute_schema_path)})")
    return out


def cmd_validate(spec_path, records_path):
    spec = load_spec(spec_path)
    try:
        f = sys.stdin if records_path == "-" else open(records_path, encoding="utf-8")
        lines = f.read().splitlines()
    except OSError as e:
        raise UsageError(f"cannot read {records_path}: {e}") from e
    validators = {}
    checked = failed = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except ValueError as e:
            print(f"FAIL: {records_path}:{n}: not a JSON record: {e}")
            failed += 1
            continue
        checked += 1
        problems = check_record(spec, rec, validators)
        if problems:
            failed += 1
            print(f"FAIL: {records_path}:{n}: {rec.get('method')} {rec.get('path')} -> {rec.get('status')}")
            for p in problems:
                print(f"  {p}")
            shown = json.dumps(rec)
            print(f"  record: {shown if len(shown) <= 2000 else shown[:2000] + '...'}")
    print(f"openapi: {checked} responses checked against {spec_path}"
          + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0


# --- lint -----------------------------------------------------------------------------------


def walk(node, path="#"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}/{str(k).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}/{i}")


def lint_one(spec_path):
    problems = []
    try:
        spec = load_spec(spec_path)
    except UsageError as e:
        return [str(e)]
    if not re.fullmatch(r"3\.1\.\d+", str(spec.get("openapi", ""))):
        problems.append(f"openapi is {spec.get('openapi')!r}, not 3.1.x")
    for k in ("title", "version"):
        if not (spec.get("info") or {}).get(k):
            problems.append(f"info.{k} is missing")
    for where, node in walk(spec):
        if "$ref" in node:
            try:
                pointer(spec, node["$ref"])
            except (KeyError, IndexError, ValueError):
                problems.append(f"{where}: $ref {node['$ref']!r} does not resolve")
    schemes = (spec.get("components") or {}).get("securitySchemes") or {}
    for method, template, op in operations(spec):
        where = f"{method} {template}"
        role = op.get("x-hwl-role")
        if role not in ROLES:
            problems.append(f"{where}: x-hwl-role {role!r} is not one of {sorted(ROLES)}")
        limit = op.get("x-hwl-body-limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            problems.append(f"{where}: x-hwl-body-limit {limit!r} is not a non-negative integer")
        if not op.get("operationId"):
            problems.append(f"{where}: no operationId")
        responses = op.get("responses")
        if not isinstance(responses, dict) or not responses:
            problems.append(f"{where}: no responses")
        else:
            for code, r in responses.items():
                if not re.fullmatch(r"[1-5](\d\d|XX)|default", str(code)):
                    problems.append(f"{where}: response key {code!r} is not a status")
                try:
                    r = deref(spec, r)
                except KeyError:
                    continue
                if not isinstance(r, dict) or "description" not in r:
                    problems.append(f"{where} {code}: a response needs a description")
        for sec in op.get("security", spec.get("security", [])) or []:
            for name in sec:
                if name not in schemes:
                    problems.append(f"{where}: security scheme {name!r} is not defined")
        params = []
        item = deref(spec, spec["paths"][template])
        for p in list(item.get("parameters", [])) + list(op.get("parameters", [])):
            try:
                params.append(deref(spec, p))
            except KeyError:
                pass
        declared = {p.get("name") for p in params if isinstance(p, dict) and p.get("in") == "path"}
        wanted = set(re.findall(r"\{([^/{}]+)\}", template))
        for name in sorted(wanted - declared):
            problems.append(f"{where}: path parameter {name!r} is not declared")
        for name in sorted(declared - wanted):
            problems.append(f"{where}: path parameter {name!r} is not in the path")
    ids = [op.get("operationId") for _, _, op in operations(spec) if op.get("operationId")]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"operationId {dup!r} is used more than once")
    for name, schema in ((spec.get("components") or {}).get("schemas") or {}).items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as e:
            problems.append(f"components/schemas/{name}: not a valid schema: {e.message}")
    return problems


def cmd_lint(paths):
    rc = 0
    for p in paths:
        problems = lint_one(p)
        for q in problems:
            print(f"FAIL: {p}: {q}")
        if problems:
            rc = 1
        else:
            n = sum(1 for _ in operations(load_spec(p)))
            print(f"openapi lint: {p}: {n} operations, every $ref resolves")
    return rc


def main(argv):
    usage = (
        "usage: openapi_check.py routes SPEC ROUTES_JSON | validate SPEC RECORDS_JSONL | "
        "lint SPEC..."
    )
    try:
        if len(argv) == 3 and argv[0] == "routes":
            return cmd_routes(argv[1], argv[2])
        if len(argv) == 3 and argv[0] == "validate":
            return cmd_validate(argv[1], argv[2])
        if len(argv) >= 2 and argv[0] == "lint":
            return cmd_lint(argv[1:])
    except UsageError as e:
        print(f"openapi_check: {e}", file=sys.stderr)
        return 2
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
