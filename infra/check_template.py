#!/usr/bin/env python3
"""Checks template.yaml against infra/table.json and the project's IAM rules.

Fails (exit 1, one line per problem) unless:
  * the template has exactly one AWS::DynamoDB::Table, and its key schema,
    attribute definitions, GSIs (names, keys, projection ALL), TTL attribute
    and stream view type are exactly what infra/table.json says; it is
    PAY_PER_REQUEST, has point-in-time recovery, and is retained on delete
    and on replacement;
  * no IAM policy statement anywhere in the template allows dynamodb:Scan,
    any action with a wildcard (`*`, `dynamodb:*`, `dynamodb:Get*`, ...), or
    uses Allow + NotAction (which allows everything not listed);
  * every AWS::Serverless::Function names an explicit Role (otherwise SAM
    attaches managed policies that this check cannot see);
  * every SQS event source of a function reports partial batch failures
    (ReportBatchItemFailures), reads a queue of this template that has a
    RedrivePolicy to a dead-letter queue (or is itself another queue's
    dead-letter queue), and that queue's VisibilityTimeout is at least 6x the
    function's Timeout (Lambda's advice, so a job is not delivered again while
    its first run is still going);
  * every route of the REST route table (infra/routes.json, which a cargo
    test keeps equal to the code's table), and every route of the seed 003
    dialect under both its prefixes (infra/dialect-routes.json, likewise), reaches, by API Gateway's route
    selection, the function of its endpoint family (a function's family is
    its cargo binary's name), and a catch-all `ANY /{proxy+}` exists so API
    Gateway never answers an unknown path itself;
  * every job queue of the code's map (infra/queues.json, kept equal to
    linkcrm_domain::jobs by a cargo test) is wired: the relay function's
    environment gives its URL (`urlEnv`) as a queue of this template, and a
    worker function consumes that same queue through an SQS event source;
  * every EventBridge rule target that is an SQS queue of this template (the
    webhook queue) has a DeadLetterConfig, and that queue and the dead-letter
    queue each have an AWS::SQS::QueuePolicy letting events.amazonaws.com
    sqs:SendMessage on the condition that aws:SourceArn is that rule (without
    it EventBridge cannot deliver, and every event goes to the DLQ).

The template is read with cfn-lint's decoder, which understands the
short-form intrinsic tags (!Ref, !GetAtt, !Sub, ...).

Usage: python3 infra/check_template.py [--template T] [--table-spec J]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO / "template.yaml"
DEFAULT_TABLE_SPEC = REPO / "infra" / "table.json"
DEFAULT_ROUTES = REPO / "infra" / "routes.json"
DEFAULT_QUEUES = REPO / "infra" / "queues.json"
# The seed 003 dialect's routes (both prefixes), kept equal to its route table by a cargo test;
# each names the dialect function's binary as its family.
DEFAULT_DIALECT_ROUTES = REPO / "infra" / "dialect-routes.json"
# The seed 004 dialect's routes, likewise (its cargo test keeps the file equal to its table).
DEFAULT_DIALECT_CRM_ROUTES = REPO / "infra" / "dialect-crm-routes.json"

FORBIDDEN_ACTIONS = {"dynamodb:scan"}


def plain(value: Any) -> Any:
    """cfn-lint's node types -> plain dict/list/str (for comparison and messages)."""
    return json.loads(json.dumps(value))


def load_template(path: Path) -> dict:
    template, matches = decode(str(path))
    if matches or template is None:
        detail = "; ".join(str(m) for m in matches) or "empty template"
        raise ValueError(f"{path}: cannot parse: {detail}")
    return plain(template)


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def key_schema(spec_pk: str, spec_sk: str | None) -> list[dict]:
    keys = [{"AttributeName": spec_pk, "KeyType": "HASH"}]
    if spec_sk:
        keys.append({"AttributeName": spec_sk, "KeyType": "RANGE"})
    return keys


def check_table(template: dict, spec: dict) -> list[str]:
    errors: list[str] = []
    resources = template.get("Resources") or {}
    tables = {
        name: res
        for name, res in resources.items()
        if isinstance(res, dict) and res.get("Type") == "AWS::DynamoDB::Table"
    }
    if len(tables) != 1:
        return [
            f"table: expected exactly one AWS::DynamoDB::Table, found {len(tables)}"
            + (f" ({', '.join(sorted(tables))})" if tables else "")
        ]
    (logical_id, table), = tables.items()
    where = f"table {logical_id}"
    props = table.get("Properties") or {}

    # Key schema.
    want_keys = key_schema(spec["partitionKey"], spec.get("sortKey"))
    got_keys = props.get("KeySchema")
    if got_keys != want_keys:
        errors.append(f"{where}: KeySchema is {got_keys}, table.json says {want_keys}")

    # Attribute definitions: exactly the key attributes of the table and its
    # indexes, all strings, each once.
    want_attrs = [spec["partitionKey"]] + ([spec["sortKey"]] if spec.get("sortKey") else [])
    for index in spec.get("indexes", []):
        want_attrs.append(index["partitionKey"])
        if index.get("sortKey"):
            want_attrs.append(index["sortKey"])
    got_defs = as_list(props.get("AttributeDefinitions"))
    got_names = [d.get("AttributeName") for d in got_defs if isinstance(d, dict)]
    if sorted(got_names) != sorted(want_attrs):
        errors.append(
            f"{where}: AttributeDefinitions name {sorted(got_names)}, "
            f"table.json needs exactly {sorted(want_attrs)}"
        )
    for d in got_defs:
        if isinstance(d, dict) and d.get("AttributeType") != "S":
            errors.append(
                f"{where}: attribute {d.get('AttributeName')} has type "
                f"{d.get('AttributeType')!r}, table.json keys are strings (S)"
            )

    # Global secondary indexes.
    want_gsis = {i["name"]: i for i in spec.get("indexes", [])}
    got_gsis = {
        g.get("IndexName"): g
        for g in as_list(props.get("GlobalSecondaryIndexes"))
        if isinstance(g, dict)
    }
    missing = sorted(set(want_gsis) - set(got_gsis))
    extra = sorted(set(got_gsis) - set(want_gsis), key=str)
    if missing:
        errors.append(f"{where}: GSI missing: {', '.join(missing)}")
    if extra:
        errors.append(f"{where}: GSI not in table.json: {', '.join(map(str, extra))}")
    for name in sorted(set(want_gsis) & set(got_gsis)):
        want = key_schema(want_gsis[name]["partitionKey"], want_gsis[name].get("sortKey"))
        got = got_gsis[name].get("KeySchema")
        if got != want:
            errors.append(f"{where}: GSI {name} KeySchema is {got}, table.json says {want}")
        projection = got_gsis[name].get("Projection") or {}
        if projection != {"ProjectionType": "ALL"}:
            errors.append(f"{where}: GSI {name} Projection is {projection}, must be ALL")
    if props.get("LocalSecondaryIndexes"):
        errors.append(f"{where}: has LocalSecondaryIndexes; table.json defines none")

    # TTL.
    ttl = props.get("TimeToLiveSpecification") or {}
    if ttl.get("AttributeName") != spec.get("ttlAttribute") or ttl.get("Enabled") is not True:
        errors.append(
            f"{where}: TimeToLiveSpecification is {ttl}, table.json needs "
            f"{{'AttributeName': {spec.get('ttlAttribute')!r}, 'Enabled': True}}"
        )

    # Stream (the outbox relay reads it).
    stream = (props.get("StreamSpecification") or {}).get("StreamViewType")
    if stream != spec.get("stream"):
        errors.append(f"{where}: StreamViewType is {stream!r}, table.json says {spec.get('stream')!r}")

    # Operational guarantees for the one table that holds everything.
    if props.get("BillingMode") != "PAY_PER_REQUEST":
        errors.append(f"{where}: BillingMode is {props.get('BillingMode')!r}, must be PAY_PER_REQUEST")
    pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
    if pitr is not True:
        errors.append(f"{where}: point-in-time recovery must be enabled")
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        if table.get(policy) != "Retain":
            errors.append(f"{where}: {policy} is {table.get(policy)!r}, must be Retain")
    return errors


def policy_statements(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every IAM statement in the template: any mapping under a `Statement` key
    (role and managed policies, SAM `Policies` inline documents, resource
    policies, ...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}/{key}"
            if key == "Statement":
                for i, stmt in enumerate(as_list(value)):
                    if isinstance(stmt, dict):
                        yield f"{here}[{i}]", stmt
            yield from policy_statements(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from policy_statements(value, f"{path}[{i}]")


def check_iam(template: dict) -> list[str]:
    errors: list[str] = []
    for where, stmt in policy_statements(template):
        if stmt.get("Effect") != "Allow":
            continue
        sid = f" ({stmt['Sid']})" if isinstance(stmt.get("Sid"), str) else ""
        if "NotAction" in stmt:
            errors.append(f"{where}{sid}: Allow with NotAction grants every other action")
        for action in as_list(stmt.get("Action")):
            if not isinstance(action, str):
                errors.append(f"{where}{sid}: action {action!r} is not a literal string")
                continue
            if "*" in action or "?" in action:
                errors.append(f"{where}{sid}: wildcard action {action!r}")
            elif action.lower() in FORBIDDEN_ACTIONS:
                errors.append(f"{where}{sid}: {action} is not allowed (no Scan on any path)")
    return errors


def check_function_roles(template: dict) -> list[str]:
    errors = []
    for name, res in (template.get("Resources") or {}).items():
        if isinstance(res, dict) and res.get("Type") == "AWS::Serverless::Function":
            if not (res.get("Properties") or {}).get("Role"):
                errors.append(
                    f"function {name}: no explicit Role; SAM would generate one with "
                    "managed policies this check cannot inspect"
                )
    return errors


def ref_target(value: Any) -> str | None:
    """The logical id a `!GetAtt X.Arn` / `!Ref X` points at."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).split(".")[0]
        if "Ref" in value:
            return str(value["Ref"])
    return None


def check_queue_workers(template: dict) -> list[str]:
    errors = []
    resources = template.get("Resources") or {}
    default_timeout = ((template.get("Globals") or {}).get("Function") or {}).get("Timeout", 3)
    for name, res in resources.items():
        if not isinstance(res, dict) or res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        timeout = props.get("Timeout", default_timeout)
        for event_name, event in (props.get("Events") or {}).items():
            if not isinstance(event, dict) or event.get("Type") != "SQS":
                continue
            where = f"function {name} event {event_name}"
            eprops = event.get("Properties") or {}
            if "ReportBatchItemFailures" not in as_list(eprops.get("FunctionResponseTypes")):
                errors.append(f"{where}: FunctionResponseTypes must include ReportBatchItemFailures")
            queue_id = ref_target(eprops.get("Queue"))
            queue = resources.get(queue_id) if queue_id else None
            if not isinstance(queue, dict) or queue.get("Type") != "AWS::SQS::Queue":
                errors.append(f"{where}: Queue must be an AWS::SQS::Queue of this template")
                continue
            qprops = queue.get("Properties") or {}
            is_dead_letter_queue = any(
                ref_target(((r.get("Properties") or {}).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
                == queue_id
                for r in resources.values()
                if isinstance(r, dict) and r.get("Type") == "AWS::SQS::Queue"
            )
            if not is_dead_letter_queue and not (qprops.get("RedrivePolicy") or {}).get("deadLetterTargetArn"):
                errors.append(f"{where}: queue {queue_id} has no RedrivePolicy to a dead-letter queue")
            visibility = qprops.get("VisibilityTimeout", 30)
            if isinstance(visibility, int) and isinstance(timeout, int) and visibility < 6 * timeout:
                errors.append(
                    f"{where}: queue {queue_id} VisibilityTimeout {visibility} is under 6x the "
                    f"function Timeout {timeout}"
                )
    return errors


def http_routes(template: dict) -> list[tuple[str, str, str, str]]:
    """(method, path, function logical id, binary) of every HttpApi event."""
    out = []
    for name, res in (template.get("Resources") or {}).items():
        if not isinstance(res, dict) or res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = (((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")) or ""
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            if isinstance(event, dict) and event.get("Type") == "HttpApi":
                props = event.get("Properties") or {}
                out.append((str(props.get("Method", "ANY")).upper(), str(props.get("Path", "")), name, binary))
    return out


def route_match(template_path: str, path: str) -> tuple[int, int] | None:
    """How specifically an API Gateway route path matches a request path, or None. Higher wins:
    a route without a greedy variable beats one with; then more literal segments; then (greedy)
    the longer prefix."""
    want = path.strip("/").split("/")
    have = template_path.strip("/").split("/") if template_path.strip("/") else []
    greedy = bool(have) and have[-1].startswith("{") and have[-1].endswith("+}")
    fixed = have[:-1] if greedy else have
    if greedy:
        if len(want) <= len(fixed):
            return None
    elif len(want) != len(fixed):
        return None
    literal = 0
    for seg, got in zip(fixed, want):
        if seg.startswith("{") and seg.endswith("}"):
            continue
        if seg != got:
            return None
        literal += 1
    return (0 if greedy else 1, literal * 1000 + len(fixed))


def check_routes(template: dict, routes: list[dict]) -> list[str]:
    errors = []
    api = http_routes(template)
    declared: dict[tuple[str, str], str] = {}
    for m, p, function, _ in api:
        if (m, p) in declared:
            errors.append(f"route {m} {p} is declared by both {declared[(m, p)]} and {function}")
        declared[(m, p)] = function
    if not any(m == "ANY" and p == "/{proxy+}" for m, p, _, _ in api):
        errors.append("no catch-all route ANY /{proxy+}: API Gateway would answer unknown paths itself")
    for route in routes:
        method, path = route["method"], route["path"]
        concrete = "/".join("x" if s.startswith("{") else s for s in path.split("/"))
        best = None
        for m, p, function, binary in api:
            if m not in ("ANY", method):
                continue
            score = route_match(p, concrete)
            if score is not None and (best is None or score > best[0]):
                best = (score, function, binary)
        if best is None:
            errors.append(f"route {method} {path} ({route['operation']}): no function serves it")
        elif best[2] != route["family"]:
            errors.append(
                f"route {method} {path} ({route['operation']}): reaches {best[1]} (binary {best[2] or '?'}), "
                f"not the {route['family']} family's function"
            )
    return errors


def check_job_queues(template: dict, queues: list[dict]) -> list[str]:
    errors = []
    resources = template.get("Resources") or {}
    functions = {
        name: res
        for name, res in resources.items()
        if isinstance(res, dict) and res.get("Type") == "AWS::Serverless::Function"
    }
    relays = [
        (name, res)
        for name, res in functions.items()
        if (((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")) == "relay"
    ]
    if len(relays) != 1:
        return [f"expected one relay function, found {len(relays)}"]
    relay_name, relay = relays[0]
    env = (((relay.get("Properties") or {}).get("Environment") or {}).get("Variables")) or {}
    consumed = set()
    for res in functions.values():
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            if isinstance(event, dict) and event.get("Type") == "SQS":
                consumed.add(ref_target((event.get("Properties") or {}).get("Queue")))
    for q in queues:
        queue_id = ref_target(env.get(q["urlEnv"]))
        kinds = ", ".join(q["kinds"])
        if queue_id is None or (resources.get(queue_id) or {}).get("Type") != "AWS::SQS::Queue":
            errors.append(
                f"job queue {q['queue']} ({kinds}): {relay_name} has no {q['urlEnv']} naming a queue of this template"
            )
        elif queue_id not in consumed:
            errors.append(f"job queue {q['queue']} ({kinds}): no function consumes {queue_id}")
    return errors


def lets_rule_send(policy: dict, queue_id: str, rule_id: str) -> bool:
    """Whether an AWS::SQS::QueuePolicy resource lets `rule_id` (by aws:SourceArn) send to `queue_id`."""
    props = policy.get("Properties") or {}
    if queue_id not in [ref_target(q) for q in as_list(props.get("Queues"))]:
        return False
    for stmt in as_list((props.get("PolicyDocument") or {}).get("Statement")):
        if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
            continue
        principal = stmt.get("Principal") or {}
        services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if "events.amazonaws.com" not in services:
            continue
        if "sqs:sendmessage" not in [a.lower() for a in as_list(stmt.get("Action")) if isinstance(a, str)]:
            continue
        if ref_target(stmt.get("Resource")) != queue_id:
            continue
        condition = stmt.get("Condition") or {}
        for operator in ("ArnEquals", "ArnLike"):
            source = (condition.get(operator) or {}).get("aws:SourceArn")
            if ref_target(source) == rule_id:
                return True
    return False


def check_event_rules(template: dict) -> list[str]:
    errors = []
    resources = template.get("Resources") or {}
    policies = [r for r in resources.values() if isinstance(r, dict) and r.get("Type") == "AWS::SQS::QueuePolicy"]

    def is_queue(queue_id: str | None) -> bool:
        return (resources.get(queue_id) or {}).get("Type") == "AWS::SQS::Queue"

    for rule_id, rule in resources.items():
        if not isinstance(rule, dict) or rule.get("Type") != "AWS::Events::Rule":
            continue
        for target in as_list((rule.get("Properties") or {}).get("Targets")):
            if not isinstance(target, dict):
                continue
            queue_id = ref_target(target.get("Arn"))
            if not is_queue(queue_id):
                continue
            where = f"rule {rule_id} target {target.get('Id', '?')}"
            dlq_id = ref_target((target.get("DeadLetterConfig") or {}).get("Arn"))
            if dlq_id is None:
                errors.append(f"{where}: no DeadLetterConfig; events EventBridge cannot deliver would be lost")
            for q in [queue_id] + ([dlq_id] if is_queue(dlq_id) else []):
                if not any(lets_rule_send(p, q, rule_id) for p in policies):
                    errors.append(
                        f"{where}: no AWS::SQS::QueuePolicy lets events.amazonaws.com sqs:SendMessage to {q} "
                        f"with aws:SourceArn {rule_id}"
                    )
    return errors


def check(
    template: dict, spec: dict, routes: list[dict] | None = None, queues: list[dict] | None = None
) -> list[str]:
    if routes is None:
        routes = (
            json.loads(DEFAULT_ROUTES.read_text())
            + json.loads(DEFAULT_DIALECT_ROUTES.read_text())
            + json.loads(DEFAULT_DIALECT_CRM_ROUTES.read_text())
        )
    if queues is None:
        queues = json.loads(DEFAULT_QUEUES.read_text())
    return (
        check_table(template, spec)
        + check_iam(template)
        + check_function_roles(template)
        + check_queue_workers(template)
        + check_routes(template, routes)
        + check_job_queues(template, queues)
        + check_event_rules(template)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--table-spec", type=Path, default=DEFAULT_TABLE_SPEC)
    args = parser.parse_args(argv)
    try:
        template = load_template(args.template)
        spec = json.loads(args.table_spec.read_text())
    except (OSError, ValueError) as exc:
        print(f"check_template: {exc}", file=sys.stderr)
        return 2
    errors = check(template, spec)
    if errors:
        print(f"check_template: {args.template} FAILED ({len(errors)} problem(s)):", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    print(
        f"check_template: {args.template.name} OK (table matches {args.table_spec.name}; "
        "no Scan, no wildcard actions, explicit function roles, queue workers wired, "
        "every route reaches its family's function, every job queue wired, event rules may send to their queues)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
