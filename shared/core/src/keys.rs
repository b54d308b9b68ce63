//! Storage keys of the platform records (agencies, workspaces, API keys, idempotency). One place,
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
