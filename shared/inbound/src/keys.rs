//! Storage keys of the inbound context (docs/access-patterns.md lists them).

use linkcrm_storage::Key;

/// A workspace's negotiator settings.
pub fn settings(ws: &str) -> Key {
    Key::new(format!("WS#{ws}#INBOUNDCFG"), "#")
}
/// A partner's mode for a workspace: `WS#<ws>#INBOUNDACCT` / `<account id>`.
pub fn account_mode(ws: &str, account: &str) -> Key {
    Key::new(format!("WS#{ws}#INBOUNDACCT"), account)
}
/// A workspace's eval gates (the current version of each).
pub fn gates_pk(ws: &str) -> String {
    format!("WS#{ws}#GATES")
}
pub fn gate(ws: &str, id: &str) -> Key {
    Key::new(gates_pk(ws), id)
}
/// Every version of a gate, oldest first: `GATEVER#<gate id>` / `<version, 6 digits>`.
pub fn gate_versions_pk(id: &str) -> String {
    format!("GATEVER#{id}")
}
pub fn gate_version(id: &str, version: i64) -> Key {
    Key::new(gate_versions_pk(id), format!("{version:06}"))
}
/// A negotiation decided once per message (and per hold): `NEGOT#<message id>` / `<round>`.
pub fn negotiation_guard(message: &str, round: i64) -> Key {
    Key::new(format!("NEGOT#{message}"), format!("{round:03}"))
}
/// The credits a round was charged, once: `NEGOT#<message id>` / `<round>#charge`.
pub fn negotiation_charge(message: &str, round: i64) -> Key {
    Key::new(format!("NEGOT#{message}"), format!("{round:03}#charge"))
}
