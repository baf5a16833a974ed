"""Independent checks of the served OpenAPI document (openapi-spec-validator).

usage: openapi_check.py DOCUMENT.json [SAMPLES.json]
  SAMPLES.json: [[schema_name, instance], ...] — real answers of the API, each
  validated against the named component schema of the document.
Prints one JSON object: {valid, openapi, operations: [[METHOD, path]...],
sample_errors: [...]} or {valid: false, error}.
"""
import json
import sys

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

doc = json.load(open(sys.argv[1], encoding="utf-8"))
out = {"openapi": doc.get("openapi")}
try:
    validate(doc)
    out["valid"] = True
except Exception as e:  # noqa: BLE001 - the test reports whatever failed
    out["valid"] = False
    out["error"] = f"{type(e).__name__}: {e}"
methods = ("get", "put", "post", "delete", "patch", "head", "options")
out["operations"] = sorted(
    [m.upper(), p] for p, item in doc.get("paths", {}).items() for m in item if m in methods
)
out["sample_errors"] = []
if len(sys.argv) > 2:
    for name, instance in json.load(open(sys.argv[2], encoding="utf-8")):
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        for err in OAS31Validator(schema).iter_errors(instance):
            out["sample_errors"].append(f"{name}: {err.message} at {list(err.absolute_path)}")
print(json.dumps(out, ensure_ascii=False))
