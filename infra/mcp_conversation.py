"""Drives linkcrm's MCP door with the official Python MCP SDK (PyPI `mcp`, its streamable HTTP
client), as an assistant would: the seeds' MCP examples as a scripted conversation of tool calls,
plus the door's rules (auth, scopes, workspaces, names, schemas, errors).

Usage: python infra/mcp_conversation.py <config.json>

The config names the server and what the test made there:
  url            the MCP endpoint (http://127.0.0.1:PORT/mcp)
  key            a workspace key with every scope (workspace A)
  readonly_key   a key of workspace A with crm:read and campaigns:read only
  other_key      a key of workspace B
  agency_key     the agency's key
  workspace      workspace A's id
  engaged_rel    A's ACTIVELY_ENGAGED relationship (engineering-blog.com)
  other_rel      B's relationship
  campaign       A's custom campaign
  discover       whether contact discovery has a provider to call (true locally)

Prints one line per step; exits 1 at the first failed expectation.
"""

import asyncio
import json
import re
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def step(msg):
    print(f"ok: {msg}", flush=True)


def expect(cond, msg, detail=None):
    if not cond:
        print(f"FAILED: {msg}" + (f"\n  {detail}" if detail is not None else ""), flush=True)
        sys.exit(1)


def client(cfg, key, headers=None):
    h = {"Authorization": f"Bearer {key}"}
    h.update(headers or {})
    http = httpx2.AsyncClient(headers=h, timeout=httpx2.Timeout(60.0))
    return Client(streamable_http_client(cfg["url"], http_client=http), cache=None, read_timeout_seconds=60)


def structured(result):
    return result.structured_content if result.structured_content is not None else json.loads(result.content[0].text)


def has_ref(v):
    if isinstance(v, dict):
        return "$ref" in v or any(has_ref(x) for x in v.values())
    if isinstance(v, list):
        return any(has_ref(x) for x in v)
    return False


async def raw_post(cfg, key, body, host=None):
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2025-11-25"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if host is not None:
        headers["Host"] = host
    async with httpx2.AsyncClient(timeout=30.0) as http:
        return await http.post(cfg["url"], headers=headers, content=json.dumps(body))


def rpc_result(resp):
    """The JSON-RPC answer of a POST, as JSON or as the data of its SSE event."""
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        return resp.json()
    for line in resp.text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            msg = json.loads(line[5:])
            if "id" in msg:
                return msg
    raise AssertionError(f"no JSON-RPC answer in {resp.text[:500]!r}")


async def main(cfg):
    # Bearer auth on every request: none, or a wrong one, is 401 with a challenge.
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}}}
    r = await raw_post(cfg, None, init)
    expect(r.status_code == 401, "no key: 401", r.status_code)
    expect(r.headers.get("www-authenticate", "").startswith("Bearer"), "no key: WWW-Authenticate", dict(r.headers))
    r = await raw_post(cfg, "sk_live_not_a_key_at_all_1234", init)
    expect(r.status_code == 401 and "invalid_token" in r.headers.get("www-authenticate", ""), "bad key: 401", r.text)
    step("401 with WWW-Authenticate without a key or with a bad one")
    r = await raw_post(cfg, cfg["agency_key"], init, host="rebound.evil.example")
    expect(r.status_code == 403 and r.json()["code"] == "host_not_allowed", "a foreign Host is refused", r.text)
    step("a Host name the door does not serve: 403 host_not_allowed")

    # The anchor's tools/list filter: params.namespace, in a raw JSON-RPC message.
    r = await raw_post(cfg, cfg["agency_key"], init)
    expect(r.status_code == 200, "initialize over raw HTTP", r.text)
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"namespace": "workspaces"}}
    r = await raw_post(cfg, cfg["agency_key"], listing)
    expect(r.status_code == 200, "tools/list over raw HTTP", r.text)
    names = [t["name"] for t in rpc_result(r)["result"]["tools"]]
    expect(names and all(n.startswith("workspaces_") for n in names), "namespace filter", names)
    step(f"tools/list with params.namespace=workspaces: {len(names)} tools")

    async with client(cfg, cfg["key"]) as c:
        tools = (await c.list_tools()).tools
        by_name = {t.name: t for t in tools}
        expect(all(NAME.match(t.name) for t in tools), "tool names match ^[a-zA-Z0-9_-]{1,64}$",
               [t.name for t in tools if not NAME.match(t.name)])
        expect(not any(has_ref(t.input_schema) for t in tools), "input schemas are inlined")
        rl = by_name.get("link_building_crm_relationship_list")
        expect(rl is not None and rl.title == "link_building.crm.relationship.list", "relationship.list tool", rl)
        expect(rl.annotations.read_only_hint is True, "list is read-only", rl.annotations)
        ec = by_name["link_building_crm_event_create"]
        expect(ec.annotations.read_only_hint is False and "idempotencyKey" in ec.input_schema["properties"],
               "event.create takes idempotencyKey", ec.input_schema)
        se = by_name["link_building_campaign_send_email"]
        expect(se.annotations.open_world_hint is True, "send_email is open-world", se.annotations)
        expect("workspaces_bulk_action" not in by_name, "a workspace key does not see agency-only tools")
        step(f"tools/list for a workspace key: {len(tools)} tools")

        # Seed 000: "Who are my actively-engaged link-building partners?"
        r = await c.call_tool("link_building_crm_relationship_list", {"status": "ACTIVELY_ENGAGED"})
        expect(not r.is_error, "relationship.list", r.content)
        data = structured(r)["data"]
        expect([x["id"] for x in data] == [cfg["engaged_rel"]], "the engaged partner, only", data)
        expect(all(x["status"] == "ACTIVELY_ENGAGED" for x in data), "statuses", data)
        step("seed 000: relationship.list status=ACTIVELY_ENGAGED")

        # Seed 000: "Find contacts at engineering-blog.com and devleadweekly.com."
        if cfg.get("discover"):
            accounts = []
            for domain in ["engineering-blog.com", "devleadweekly.com"]:
                r = await c.call_tool("link_building_crm_relationship_list", {"domain": domain})
                accounts.append(structured(r)["data"][0]["accountId"])
            progress = []

            async def on_progress(done, total, message):
                progress.append(message)

            r = await c.call_tool("link_building.crm.contact.discover",
                                  {"accountIds": accounts, "roles": ["editor"], "idempotencyKey": "discover-1"},
                                  progress_callback=on_progress)
            expect(not r.is_error, "contact.discover", r.content)
            inv = structured(r).get("invocation") or {}
            expect(inv.get("status") == "SUCCEEDED", "discovery waited for and done", structured(r))
            if cfg.get("streams"):
                expect(progress and "SUCCEEDED" in progress[-1], "progress notifications while waiting", progress)
            step(f"seed 000: contact.discover waited for its invocation: SUCCEEDED ({len(progress)} progress notes)")

        # Seed 000: "Add a note ... that Marina prefers Mondays." (list, then event.create)
        r = await c.call_tool("link_building_crm_relationship_list", {"domain": "engineering-blog.com"})
        rel = structured(r)["data"][0]["id"]
        note = {"relationshipId": rel, "type": "NOTE_ADDED", "content": "Marina prefers Mondays",
                "idempotencyKey": "note-marina-mondays"}
        r1 = await c.call_tool("link_building.crm.event.create", note)
        expect(not r1.is_error, "event.create", r1.content)
        r2 = await c.call_tool("link_building_crm_event_create", note)
        e1, e2 = structured(r1), structured(r2)
        expect(e1["id"] == e2["id"] and e1["type"] == "NOTE_ADDED", "the same idempotency key makes one note",
               (e1, e2))
        step("seed 000: relationship.list then event.create (idempotent by idempotencyKey)")

        # Seed 001: "List my active link-building campaigns", "Pause campaign ...".
        r = await c.call_tool("link_building_campaign_list", {"status": "active"})
        expect(cfg["campaign"] in [x["id"] for x in structured(r)["data"]], "campaign.list", structured(r))
        r = await c.call_tool("link_building_campaign_toggle", {"id": cfg["campaign"], "action": "pause"})
        expect(not r.is_error and structured(r)["status"] == "paused", "toggle pause", r.content)
        r = await c.call_tool("link_building_campaign_toggle", {"id": cfg["campaign"], "action": "pause"})
        expect(r.is_error and structured(r)["code"] == "already_paused", "pausing twice", r.content)
        r = await c.call_tool("link_building_campaign_toggle", {"id": cfg["campaign"], "action": "resume"})
        expect(structured(r)["status"] == "active", "toggle resume", r.content)
        step("seed 001: campaign.list, toggle pause (and already_paused), resume")

        # Seed 001: "Send a follow-up to Marina at engineering-blog.com."
        r = await c.call_tool("link_building_crm_relationship_list", {"domain": "engineering-blog.com"})
        rel = structured(r)["data"][0]
        r = await c.call_tool("link_building_crm_contact_list", {"accountId": rel["accountId"]})
        marina = [x for x in structured(r)["data"] if (x.get("email") or "").startswith("marina@")][0]
        send = {"id": cfg["campaign"], "relationshipId": rel["id"], "contactId": marina["id"], "subject": "Following up",
                "body": "Hi Marina, following up on the PM tools roundup."}
        r = await c.call_tool("link_building_campaign_send_email", send)
        expect(not r.is_error, "send_email", r.content)
        sent = structured(r)
        inv = sent["invocation"]
        expect(inv["status"] == "WAITING_APPROVAL", "the send waits for approval", sent)
        inv_id = inv.get("invocationId") or inv.get("id")
        step("seed 001: relationship.list then campaign.send_email: WAITING_APPROVAL")

        # Reading an invocation, and the anchor's approval aliases.
        r = await c.call_tool("agent_invocations_get", {"id": inv_id})
        got = structured(r)
        expect((got.get("invocationId") or got.get("id")) == inv_id, "agent.invocations.get", r.content)
        r = await c.call_tool("agent.approval.list", {})
        expect(inv_id in json.dumps(structured(r)), "agent.approval.list alias", structured(r))
        r = await c.call_tool("agent.approval.reject", {"id": inv_id, "reason": "not now"})
        expect(not r.is_error, "agent.approval.reject alias", r.content)
        r = await c.call_tool("agent_invocations_get", {"id": inv_id})
        expect(structured(r)["status"] in ("REJECTED", "CANCELLED"), "rejected", structured(r))
        step("agent.invocations.get; agent.approval.list and agent.approval.reject aliases")

        # Protocol errors vs tool errors.
        try:
            await c.call_tool("no_such_tool", {})
            expect(False, "an unknown tool is a protocol error")
        except Exception as e:  # noqa: BLE001 - the SDK raises its McpError
            step(f"unknown tool: JSON-RPC error ({type(e).__name__})")
        r = await c.call_tool("link_building_crm_event_create", {"relationshipId": rel["id"], "type": "NOPE"})
        expect(r.is_error and structured(r)["code"] == "invalid_request" and structured(r)["status"] == 400,
               "bad input: the problem object", r.content)
        step("bad input: tool error with the REST problem object")

    # A read-only key: fewer tools, and a scope error on a write.
    async with client(cfg, cfg["readonly_key"]) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        expect("link_building_crm_relationship_list" in names and "link_building_crm_event_create" not in names,
               "read-only key lists reads only", sorted(names)[:20])
        r = await c.call_tool("link_building_crm_event_create",
                              {"relationshipId": cfg["engaged_rel"], "type": "NOTE_ADDED", "content": "x"})
        expect(r.is_error and structured(r)["code"] == "insufficient_scope" and structured(r)["status"] == 403,
               "scope error", r.content)
        step("read-only key: no write tools listed; a write is 403 insufficient_scope")

    # Another workspace's key sees nothing of workspace A.
    async with client(cfg, cfg["other_key"]) as c:
        r = await c.call_tool("link_building_crm_relationship_list", {})
        ids = [x["id"] for x in structured(r)["data"]]
        expect(cfg["other_rel"] in ids and cfg["engaged_rel"] not in ids, "B lists its own only", ids)
        r = await c.call_tool("link_building_crm_relationship_get", {"id": cfg["engaged_rel"]})
        expect(r.is_error and structured(r)["status"] == 404, "B cannot read A's relationship", r.content)
        r = await c.call_tool("link_building_crm_relationship_list", {"workspace": cfg["workspace"]})
        expect(r.is_error and structured(r)["status"] == 403, "B cannot name A's workspace", r.content)
        step("another workspace's key: its own data only; A's relationship 404; A's workspace 403")

    # The agency key: the `workspace` argument, and workspaces.bulk_action (seed 001 use case A).
    async with client(cfg, cfg["agency_key"]) as c:
        r = await c.call_tool("link_building_crm_relationship_list", {})
        expect(r.is_error and structured(r)["code"] == "workspace_required", "agency key without workspace",
               r.content)
        r = await c.call_tool("link_building_crm_relationship_list",
                              {"workspace": cfg["workspace"], "status": "ACTIVELY_ENGAGED"})
        expect([x["id"] for x in structured(r)["data"]] == [cfg["engaged_rel"]], "workspace argument", r.content)
        r = await c.call_tool("workspaces_bulk_action", {"action": "link_building.campaign.list",
                                                          "workspaces": "all", "config": {"status": "active"}})
        expect(not r.is_error, "bulk_action", r.content)
        res = structured(r)
        expect(res["status"] == "SUCCEEDED" and len(res["results"]) >= 2, "one result per workspace", res)
        step("agency key: workspace argument; workspaces.bulk_action campaign.list over all workspaces")
        ns = (await c.list_tools(meta={"namespace": "link_building"})).tools
        expect(ns and all(t.name.startswith("link_building_") for t in ns), "namespace via _meta", [t.name for t in ns])
        step(f"tools/list with _meta.namespace=link_building: {len(ns)} tools")
    print("conversation complete", flush=True)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        asyncio.run(main(json.load(f)))
