//! Storage keys of the core records (agencies, workspaces, API keys, idempotency, credits,
//! invocations, approvals). One place,
//! so `docs/access-patterns.md` can be checked against it.

use linkcrm_storage::Key;

pub fn agency(id: &str) -> Key {
    Key::new(format!("AG#{id}"), "#META")
}
pub fn workspace(id: &str) -> Key {
    Key::new(format!("WS#{id}"), "#META")
}
/// An agency's workspaces, newest first by id: pointer items `AG#<ag>#WS / <ws>`.
pub fn agency_workspaces_pk(agency: &str) -> String {
    format!("AG#{agency}#WS")
}
pub fn agency_workspace(agency: &str, ws: &str) -> Key {
    Key::new(agency_workspaces_pk(agency), ws)
}
/// Workspaces carrying a tag: pointer items `AG#<ag>#TAG#<tag> / <ws>`.
pub fn tag_pk(agency: &str, tag: &str) -> String {
    format!("AG#{agency}#TAG#{tag}")
}
pub fn tag_pointer(agency: &str, tag: &str, ws: &str) -> Key {
    Key::new(tag_pk(agency, tag), ws)
}
/// The item an incoming key is looked up by: the SHA-256 of the secret.
/// A workspace's members (people keys and records can belong to), by id.
pub fn members_pk(ws: &str) -> String {
    format!("WS#{ws}#MEMBERS")
}
pub fn member(ws: &str, id: &str) -> Key {
    Key::new(members_pk(ws), id)
}

pub fn api_key_auth(hash: &str) -> Key {
    Key::new(format!("KEY#{hash}"), "#KEY")
}
/// A workspace's (or, for agency keys, an agency's) list of keys.
pub fn key_owner_pk(agency: &str, workspace: Option<&str>) -> String {
    match workspace {
        Some(ws) => format!("WS#{ws}#KEYS"),
        None => format!("AG#{agency}#KEYS"),
    }
}
pub fn api_key_pointer(agency: &str, workspace: Option<&str>, key_id: &str) -> Key {
    Key::new(key_owner_pk(agency, workspace), key_id)
}
pub fn idempotency(scope: &str) -> Key {
    Key::new(format!("IDEM#{scope}"), "#")
}
pub fn bootstrap() -> Key {
    Key::new("SYS#BOOTSTRAP", "#")
}
pub fn secret() -> Key {
    Key::new("SYS#SECRET", "#")
}

/// A credit pool: a workspace's own, or its agency's (`creditPool: agency`).
pub fn workspace_credits(ws: &str) -> Key {
    Key::new(format!("WS#{ws}"), "#CREDITS")
}
pub fn agency_credits(agency: &str) -> Key {
    Key::new(format!("AG#{agency}"), "#CREDITS")
}
/// A workspace's usage in one billing cycle (`YYYY-MM`).
pub fn usage(ws: &str, cycle: &str) -> Key {
    Key::new(format!("WS#{ws}"), format!("#USAGE#{cycle}"))
}
/// A workspace's credit ledger: one item per grant, reservation, charge and release.
pub fn ledger_pk(ws: &str) -> String {
    format!("WS#{ws}#LEDGER")
}
pub fn approval(id: &str) -> Key {
    Key::new(format!("APPR#{id}"), "#")
}
/// A workspace's approvals on GSI1, newest last.
pub fn approvals_pk(ws: &str) -> String {
    format!("WS#{ws}#APPRS")
}
pub fn invocation(id: &str) -> Key {
    Key::new(format!("INV#{id}"), "#")
}
/// A workspace's invocations on GSI1.
pub fn invocations_pk(ws: &str) -> String {
    format!("WS#{ws}#INVS")
}
/// A workspace's own key for a provider (`dataforseo`, `ahrefs`, `llm`), sealed.
pub fn provider_integration(ws: &str, provider: &str) -> Key {
    Key::new(format!("WS#{ws}#INTEGRATIONS"), provider)
}
/// A workspace's audit log (or an agency's, for agency-level operations): `AUDIT#<ws or ag>` /
/// `<aud id>` (ids sort by time).
pub fn audit_pk(owner: &str) -> String {
    format!("AUDIT#{owner}")
}
pub fn audit_entry(owner: &str, id: &str) -> Key {
    Key::new(audit_pk(owner), id)
}
/// The last recorded outcome of a workspace's calls to an integration (`health`):
/// `WS#<ws>` / `#HEALTH#<integration>`.
pub fn integration_health(ws: &str, integration: &str) -> Key {
    Key::new(format!("WS#{ws}"), format!("#HEALTH#{integration}"))
}
