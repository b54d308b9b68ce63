"""schemathesis hooks for infra/fuzz.sh.

- `cursor`: a list's cursor is a token only the server mints (signed, bound to the list and the
  workspace), so no value schemathesis could draw is valid, and every "valid" case with one would
  be refused as it should be. Cursors are exercised by the black-box tests, page after page.
- `Idempotency-Key`: drawn values repeat (`0`, `00`, …) across cases with different bodies, so
  nearly every write would be answered 409 `idempotency_key_reused` before reaching its operation
  and the fuzzer would test little else. Idempotency is exercised by the black-box tests.
- `X-Workspace-Id`, for a run without WORKSPACE: the document declares it optional, so
  schemathesis would draw values for it and the "no header" run would not be one; worse, its
  coverage phase only builds [A-Za-z0-9] header values, so it sends an invalid one ("0") in cases
  it labels valid when the pattern needs `ws_`. With WORKSPACE it is fixed by `-H` instead.
"""

import os

import schemathesis


@schemathesis.hook
def before_load_schema(context, raw_schema):
    for path_item in raw_schema.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [p for p in operation["parameters"] if not dropped(p)]


def dropped(parameter):
    if parameter.get("in") == "query" and parameter.get("name") == "cursor":
        return True
    if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
        return True
    return parameter.get("name") == "X-Workspace-Id" and not os.environ.get("WORKSPACE")
