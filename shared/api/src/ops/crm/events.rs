//! `link_building.crm.event.*` operations.

use crate::catalogue::OpSpec;

pub fn ops() -> Vec<OpSpec> {
    vec![]
}
