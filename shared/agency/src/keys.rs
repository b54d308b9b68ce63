//! Storage keys of the agency context (docs/access-patterns.md lists them).

use linkcrm_storage::Key;

/// A bulk action's parent record: `BULK#<inv id>` / `#`.
pub fn bulk_parent(id: &str) -> Key {
    Key::new(format!("BULK#{id}"), "#")
}
/// One workspace's result of a bulk action: `BULK#<inv id>` / `WS#<ws>`.
pub const BULK_CHILD_PREFIX: &str = "WS#";
pub fn bulk_child(id: &str, ws: &str) -> Key {
    Key::new(format!("BULK#{id}"), format!("{BULK_CHILD_PREFIX}{ws}"))
}
/// An agency's scheduled bulk actions: `BSCH#<agency>` / `<bsch id>`.
pub fn schedules_pk(agency: &str) -> String {
    format!("BSCH#{agency}")
}
pub fn schedule(agency: &str, id: &str) -> Key {
    Key::new(schedules_pk(agency), id)
}
/// The due index of active schedules (GSI3): `BSCH#DUE` / `<nextRunAt>#<bsch id>`.
pub const SCHEDULES_DUE: &str = "BSCH#DUE";
pub fn schedule_due_sort(next: &str, id: &str) -> String {
    format!("{next}#{id}")
}
