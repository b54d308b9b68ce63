//! Storage keys of the webhooks context (docs/access-patterns.md lists them).
//!
//! An endpoint's owner is the workspace it belongs to, or the agency for an agency-wide endpoint.

use linkcrm_storage::Key;

/// An owner's endpoints: `WHK#<owner>` / `<whk id>` (ids sort by creation).
pub fn endpoints_pk(owner: &str) -> String {
    format!("WHK#{owner}")
}
pub fn endpoint(owner: &str, id: &str) -> Key {
    Key::new(endpoints_pk(owner), id)
}
/// One event's delivery to one endpoint, made once: `WHDLV#<whk id>` / `<event id>`. Event ids
/// sort by time, so a window of an endpoint's deliveries is one range Query (recover).
pub fn deliveries_pk(endpoint: &str) -> String {
    format!("WHDLV#{endpoint}")
}
pub fn delivery(endpoint: &str, event: &str) -> Key {
    Key::new(deliveries_pk(endpoint), event)
}
/// An endpoint's attempts, newest last: `WHATT#<whk id>` / `<whatt id>`.
pub fn attempts_pk(endpoint: &str) -> String {
    format!("WHATT#{endpoint}")
}
pub fn attempt(endpoint: &str, id: &str) -> Key {
    Key::new(attempts_pk(endpoint), id)
}
/// An owner's dead letters (deliveries that used every attempt): `WHDLQ#<owner>` / `<whmsg id>`.
pub fn dead_letters_pk(owner: &str) -> String {
    format!("WHDLQ#{owner}")
}
pub fn dead_letter(owner: &str, message: &str) -> Key {
    Key::new(dead_letters_pk(owner), message)
}
