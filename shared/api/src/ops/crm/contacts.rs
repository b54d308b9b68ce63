//! `link_building.crm.contact.*` operations.

use crate::catalogue::OpSpec;

pub fn ops() -> Vec<OpSpec> {
    vec![]
}
