//! `link_building.crm.relationship.*` operations.

use crate::catalogue::OpSpec;

pub fn ops() -> Vec<OpSpec> {
    vec![]
}
