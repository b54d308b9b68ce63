"""Tests for infra/prebuilt_template.py (the `cargo lambda build` + `sam deploy`
route). Run from the repository root:
python3 -m unittest infra/test_prebuilt_template.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_template  # noqa: E402
import prebuilt_template  # noqa: E402

TEMPLATE = HERE.parent / "template.yaml"
RUST_FUNCTIONS = {
    "CrmFunction": "crm",
    "OutreachFunction": "outreach",
    "AgentFunction": "agent",
    "CampaignsFunction": "campaigns",
    "InboundFunction": "inbound",
    "WebhooksFunction": "webhooks",
    "AgencyFunction": "agency",
    "WorkspacesFunction": "workspaces",
    "RelayFunction": "relay",
    "SendWorkerFunction": "send-worker",
    "DiscoverWorkerFunction": "discover-worker",
    "CampaignWorkerFunction": "campaign-worker",
    "InboundWorkerFunction": "inbound-worker",
    "AgencyWorkerFunction": "agency-worker",
    "WebhookDeliveryFunction": "webhook-delivery",
    "McpFunction": "mcp",
    "DialectBacklinkOutreachFunction": "dialect-backlink-outreach",
    "DialectCrmFunction": "dialect-crm",
    "LinksFunction": "links",
    "LinkcheckWorkerFunction": "linkcheck-worker",
}


class PrebuiltTemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.source = check_template.load_template(TEMPLATE)

    def test_source_builds_with_cargo_lambda(self) -> None:
        # The binaries the prebuilt route expects are the ones SAM builds.
        for logical_id, binary in RUST_FUNCTIONS.items():
            resource = self.source["Resources"][logical_id]
            self.assertEqual(resource["Metadata"]["BuildMethod"], "rust-cargolambda")
            self.assertEqual(resource["Metadata"]["BuildProperties"]["Binary"], binary)
            self.assertEqual(resource["Properties"]["CodeUri"], f"functions/{binary}/")

    def test_points_code_uri_at_built_binaries(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for binary in RUST_FUNCTIONS.values():
                (root / "target" / "lambda" / binary).mkdir(parents=True)
                (root / "target" / "lambda" / binary / "bootstrap").write_bytes(b"\x7fELF")
            out, problems = prebuilt_template.prebuilt(self.source, root)
        self.assertEqual(problems, [])
        for logical_id, binary in RUST_FUNCTIONS.items():
            resource = out["Resources"][logical_id]
            self.assertEqual(resource["Properties"]["CodeUri"], f"target/lambda/{binary}/")
            self.assertNotIn("Metadata", resource)
        # Only CodeUri and the build metadata change.
        for logical_id in RUST_FUNCTIONS:
            out["Resources"][logical_id]["Properties"].pop("CodeUri")
        expected = json.loads(json.dumps(self.source))
        for logical_id in RUST_FUNCTIONS:
            expected["Resources"][logical_id]["Properties"].pop("CodeUri")
            expected["Resources"][logical_id].pop("Metadata")
        self.assertEqual(out, expected)

    def test_missing_binary_is_reported(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            _, problems = prebuilt_template.prebuilt(self.source, Path(tmp))
        self.assertEqual(len(problems), len(RUST_FUNCTIONS))
        self.assertTrue(all("cargo lambda build --release --arm64" in p for p in problems))

    def test_source_template_is_not_modified(self) -> None:
        before = json.dumps(self.source, sort_keys=True)
        prebuilt_template.prebuilt(self.source, Path("/nonexistent"), verify=False)
        self.assertEqual(json.dumps(self.source, sort_keys=True), before)


if __name__ == "__main__":
    unittest.main()
