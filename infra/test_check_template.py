"""Negative tests for infra/check_template.py: the real template passes, and
each kind of drift or over-broad grant is caught.

Run from the repository root: python3 -m unittest infra/test_check_template.py
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_template  # noqa: E402

TEMPLATE = HERE.parent / "template.yaml"
TABLE_SPEC = HERE / "table.json"


class CheckTemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.template = check_template.load_template(TEMPLATE)
        cls.spec = json.loads(TABLE_SPEC.read_text())

    def mutated(self) -> dict:
        return copy.deepcopy(self.template)

    def table_props(self, template: dict) -> dict:
        return template["Resources"]["Table"]["Properties"]

    def workspaces_statement(self, template: dict) -> dict:
        role = template["Resources"]["WorkspacesFunctionRole"]["Properties"]
        return role["Policies"][0]["PolicyDocument"]["Statement"][0]

    def assertFails(self, template: dict, needle: str) -> None:
        errors = check_template.check(template, self.spec)
        self.assertTrue(errors, "check passed, expected a failure")
        self.assertTrue(
            any(needle in e for e in errors),
            f"no error mentions {needle!r}: {errors}",
        )

    # The real thing.
    def test_real_template_passes(self) -> None:
        self.assertEqual(check_template.check(self.template, self.spec), [])

    # Routes and families.
    def test_route_on_the_wrong_function_fails(self) -> None:
        t = self.mutated()
        events = t["Resources"]["AgentFunction"]["Properties"]["Events"]
        events["Stolen"] = t["Resources"]["OutreachFunction"]["Properties"]["Events"].pop("Mailbox")
        self.assertFails(t, "route GET /v1/mailboxes/{id} (mailboxes.get): reaches AgentFunction")

    def test_route_declared_twice_fails(self) -> None:
        t = self.mutated()
        events = t["Resources"]["AgentFunction"]["Properties"]["Events"]
        events["Twice"] = {"Type": "HttpApi", "Properties": {"Method": "ANY", "Path": "/v1/mailboxes/{proxy+}"}}
        self.assertFails(t, "route ANY /v1/mailboxes/{proxy+} is declared by both")

    def test_more_specific_route_of_another_family_is_respected(self) -> None:
        t = self.mutated()
        del t["Resources"]["OutreachFunction"]["Properties"]["Events"]["SendEmail"]
        self.assertFails(t, "send-email (link_building.crm.relationship.send_email): reaches CrmFunction")

    def test_route_without_a_function_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["AgentFunction"]["Properties"]["Events"]["AgentV1"]
        self.assertFails(t, "reaches WorkspacesFunction (binary workspaces), not the agent family")

    def test_missing_catch_all_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["WorkspacesFunction"]["Properties"]["Events"]["CatchAll"]
        self.assertFails(t, "no catch-all route")

    # Job queues.
    def test_relay_without_a_queue_url_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["RelayFunction"]["Properties"]["Environment"]["Variables"]["LINKCRM_DISCOVER_QUEUE_URL"]
        self.assertFails(t, "job queue discover (discover): RelayFunction has no LINKCRM_DISCOVER_QUEUE_URL")

    def test_queue_nobody_consumes_fails(self) -> None:
        t = self.mutated()
        events = t["Resources"]["SendWorkerFunction"]["Properties"]["Events"]
        for name in [n for n, e in events.items() if e.get("Type") == "SQS"]:
            if events[name]["Properties"]["Queue"] == {"Fn::GetAtt": ["SendQueue", "Arn"]}:
                del events[name]
        self.assertFails(t, "job queue send (send, approval_expiry): no function consumes SendQueue")

    def test_webhook_routes_reach_the_webhooks_function(self) -> None:
        t = self.mutated()
        del t["Resources"]["WebhooksFunction"]["Properties"]["Events"]["Webhook"]
        self.assertFails(
            t, "route GET /v1/webhooks/{id} (webhooks.get): reaches WorkspacesFunction (binary workspaces), "
            "not the webhooks family"
        )

    def test_relay_without_the_webhook_queue_url_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["RelayFunction"]["Properties"]["Environment"]["Variables"]["LINKCRM_WEBHOOK_QUEUE_URL"]
        self.assertFails(t, "job queue webhooks (domain_event, webhook_deliver, webhook_recover): RelayFunction has no")

    # The agency family's routes sit inside the workspaces function's /v1/workspaces/{proxy+}.
    def test_bulk_action_routes_reach_the_agency_function(self) -> None:
        t = self.mutated()
        del t["Resources"]["AgencyFunction"]["Properties"]["Events"]["BulkAction"]
        self.assertFails(
            t, "route GET /v1/workspaces/bulk-action/{id} (workspaces.bulk_action.get): reaches WorkspacesFunction "
            "(binary workspaces), not the agency family"
        )

    def test_workspace_audit_reaches_the_agency_function(self) -> None:
        t = self.mutated()
        del t["Resources"]["AgencyFunction"]["Properties"]["Events"]["WorkspaceAudit"]
        self.assertFails(
            t, "route GET /v1/workspaces/{id}/audit (workspaces.audit): reaches WorkspacesFunction (binary workspaces), "
            "not the agency family"
        )

    def test_greedy_workspace_route_on_the_agency_function_fails(self) -> None:
        # A workspace's audit as a greedy route would take the workspace's other routes too.
        t = self.mutated()
        audit = t["Resources"]["AgencyFunction"]["Properties"]["Events"]["WorkspaceAudit"]["Properties"]
        audit["Method"], audit["Path"] = "ANY", "/v1/workspaces/{id}/{proxy+}"
        self.assertFails(
            t, "route GET /v1/workspaces/{id}/api-keys (workspaces.api_keys.list): reaches AgencyFunction (binary agency), "
            "not the workspaces family"
        )

    def test_relay_without_the_agency_queue_url_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["RelayFunction"]["Properties"]["Environment"]["Variables"]["LINKCRM_AGENCY_QUEUE_URL"]
        self.assertFails(t, "job queue agency (bulk_fan, bulk_child): RelayFunction has no LINKCRM_AGENCY_QUEUE_URL")

    def test_agency_queue_nobody_consumes_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["AgencyWorkerFunction"]["Properties"]["Events"]["AgencyJobs"]
        self.assertFails(t, "job queue agency (bulk_fan, bulk_child): no function consumes AgencyQueue")

    # EventBridge rules that send to queues.
    def queue_policy_statement(self, template: dict, name: str) -> dict:
        return template["Resources"][name]["Properties"]["PolicyDocument"]["Statement"][0]

    def test_rule_without_queue_policy_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["WebhookQueuePolicy"]
        self.assertFails(t, "no AWS::SQS::QueuePolicy lets events.amazonaws.com sqs:SendMessage to WebhookQueue")

    def test_rule_queue_policy_without_source_condition_fails(self) -> None:
        t = self.mutated()
        del self.queue_policy_statement(t, "WebhookQueuePolicy")["Condition"]
        self.assertFails(t, "to WebhookQueue with aws:SourceArn WebhookEventsRule")

    def test_rule_dead_letter_queue_without_policy_fails(self) -> None:
        t = self.mutated()
        self.queue_policy_statement(t, "WebhookEventDeadLetterQueuePolicy")["Principal"] = {
            "Service": "sns.amazonaws.com"
        }
        self.assertFails(t, "sqs:SendMessage to WebhookEventDeadLetterQueue")

    def test_rule_target_without_dead_letter_config_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["WebhookEventsRule"]["Properties"]["Targets"][0]["DeadLetterConfig"]
        self.assertFails(t, "rule WebhookEventsRule target webhook-queue: no DeadLetterConfig")

    # Table drift.
    def test_dropped_gsi_fails(self) -> None:
        t = self.mutated()
        gsis = self.table_props(t)["GlobalSecondaryIndexes"]
        self.table_props(t)["GlobalSecondaryIndexes"] = [g for g in gsis if g["IndexName"] != "GSI3"]
        self.assertFails(t, "GSI missing: GSI3")

    def test_extra_gsi_fails(self) -> None:
        t = self.mutated()
        extra = copy.deepcopy(self.table_props(t)["GlobalSecondaryIndexes"][0])
        extra["IndexName"] = "GSI9"
        self.table_props(t)["GlobalSecondaryIndexes"].append(extra)
        self.assertFails(t, "GSI not in table.json: GSI9")

    def test_gsi_keys_swapped_fails(self) -> None:
        t = self.mutated()
        keys = self.table_props(t)["GlobalSecondaryIndexes"][1]["KeySchema"]
        keys[0]["AttributeName"], keys[1]["AttributeName"] = keys[1]["AttributeName"], keys[0]["AttributeName"]
        self.assertFails(t, "GSI GSI2 KeySchema")

    def test_gsi_projection_not_all_fails(self) -> None:
        t = self.mutated()
        self.table_props(t)["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "KEYS_ONLY"}
        self.assertFails(t, "GSI GSI1 Projection")

    def test_table_sort_key_missing_fails(self) -> None:
        t = self.mutated()
        self.table_props(t)["KeySchema"] = self.table_props(t)["KeySchema"][:1]
        self.assertFails(t, "KeySchema is")

    def test_attribute_type_not_string_fails(self) -> None:
        t = self.mutated()
        self.table_props(t)["AttributeDefinitions"][0]["AttributeType"] = "N"
        self.assertFails(t, "attribute PK has type 'N'")

    def test_extra_attribute_definition_fails(self) -> None:
        t = self.mutated()
        self.table_props(t)["AttributeDefinitions"].append({"AttributeName": "email", "AttributeType": "S"})
        self.assertFails(t, "AttributeDefinitions")

    def test_ttl_attribute_renamed_fails(self) -> None:
        t = self.mutated()
        self.table_props(t)["TimeToLiveSpecification"]["AttributeName"] = "expiresAt"
        self.assertFails(t, "TimeToLiveSpecification")

    def test_stream_view_type_changed_fails(self) -> None:
        t = self.mutated()
        self.table_props(t)["StreamSpecification"]["StreamViewType"] = "KEYS_ONLY"
        self.assertFails(t, "StreamViewType is 'KEYS_ONLY'")

    def test_table_not_retained_fails(self) -> None:
        t = self.mutated()
        t["Resources"]["Table"]["DeletionPolicy"] = "Delete"
        self.assertFails(t, "DeletionPolicy")

    def test_pitr_disabled_fails(self) -> None:
        t = self.mutated()
        del self.table_props(t)["PointInTimeRecoverySpecification"]
        self.assertFails(t, "point-in-time recovery")

    # IAM.
    def test_scan_granted_fails(self) -> None:
        t = self.mutated()
        self.workspaces_statement(t)["Action"].append("dynamodb:Scan")
        self.assertFails(t, "dynamodb:Scan is not allowed")

    def test_scan_in_other_case_fails(self) -> None:
        t = self.mutated()
        self.workspaces_statement(t)["Action"] = "DynamoDB:scan"
        self.assertFails(t, "is not allowed")

    def test_service_wildcard_fails(self) -> None:
        t = self.mutated()
        self.workspaces_statement(t)["Action"] = ["dynamodb:*"]
        self.assertFails(t, "wildcard action 'dynamodb:*'")

    def test_star_action_fails(self) -> None:
        t = self.mutated()
        self.workspaces_statement(t)["Action"] = "*"
        self.assertFails(t, "wildcard action '*'")

    def test_prefix_wildcard_fails(self) -> None:
        t = self.mutated()
        self.workspaces_statement(t)["Action"].append("dynamodb:Get*")
        self.assertFails(t, "wildcard action 'dynamodb:Get*'")

    def test_not_action_fails(self) -> None:
        t = self.mutated()
        stmt = self.workspaces_statement(t)
        stmt["NotAction"] = stmt.pop("Action")
        self.assertFails(t, "NotAction")

    def test_sam_inline_policy_scan_fails(self) -> None:
        t = self.mutated()
        t["Resources"]["RelayFunction"]["Properties"]["Policies"] = [
            {"Statement": [{"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": "*"}]}
        ]
        self.assertFails(t, "dynamodb:Scan is not allowed")

    def test_function_without_role_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["RelayFunction"]["Properties"]["Role"]
        self.assertFails(t, "function RelayFunction: no explicit Role")

    def send_event(self, template: dict) -> dict:
        return template["Resources"]["SendWorkerFunction"]["Properties"]["Events"]["SendJobs"]["Properties"]

    def test_worker_without_partial_batch_failures_fails(self) -> None:
        t = self.mutated()
        self.send_event(t)["FunctionResponseTypes"] = []
        self.assertFails(t, "SendJobs: FunctionResponseTypes must include ReportBatchItemFailures")

    def test_worker_queue_without_dead_letter_queue_fails(self) -> None:
        t = self.mutated()
        del t["Resources"]["SendQueue"]["Properties"]["RedrivePolicy"]
        self.assertFails(t, "queue SendQueue has no RedrivePolicy")

    def test_worker_reading_a_dead_letter_queue_needs_no_redrive_of_its_own(self) -> None:
        t = self.mutated()
        self.assertEqual(
            t["Resources"]["SendWorkerFunction"]["Properties"]["Events"]["SendDeadLetters"]["Properties"]["Queue"],
            {"Fn::GetAtt": ["SendDeadLetterQueue", "Arn"]},
        )
        self.assertEqual(check_template.check_queue_workers(t), [])
        # Once nothing redrives to it, it is a plain queue without a DLQ.
        del t["Resources"]["SendQueue"]["Properties"]["RedrivePolicy"]
        self.assertFails(t, "queue SendDeadLetterQueue has no RedrivePolicy")

    def test_worker_queue_visibility_under_six_timeouts_fails(self) -> None:
        t = self.mutated()
        t["Resources"]["DiscoverQueue"]["Properties"]["VisibilityTimeout"] = 300
        self.assertFails(t, "queue DiscoverQueue VisibilityTimeout 300 is under 6x")

    def test_worker_reading_a_foreign_queue_fails(self) -> None:
        t = self.mutated()
        self.send_event(t)["Queue"] = "arn:aws:sqs:us-east-1:123456789012:elsewhere"
        self.assertFails(t, "Queue must be an AWS::SQS::Queue of this template")

    # The script end to end, on a mutated copy of the YAML text.
    def run_script(self, template_path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(HERE / "check_template.py"), "--template", str(template_path),
             "--table-spec", str(TABLE_SPEC)],
            capture_output=True, text=True, check=False,
        )

    def test_script_passes_on_real_template(self) -> None:
        result = self.run_script(TEMPLATE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("OK", result.stdout)

    def test_script_fails_on_mutated_copy(self) -> None:
        text = TEMPLATE.read_text()
        needle = "                  - dynamodb:BatchGetItem\n"
        self.assertIn(needle, text)
        text = text.replace(needle, needle + "                  - dynamodb:Scan\n", 1)
        text = text.replace("StreamViewType: NEW_AND_OLD_IMAGES", "StreamViewType: NEW_IMAGE", 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "template.yaml"
            path.write_text(text)
            result = self.run_script(path)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("dynamodb:Scan is not allowed", result.stderr)
        self.assertIn("StreamViewType is 'NEW_IMAGE'", result.stderr)


if __name__ == "__main__":
    unittest.main()
