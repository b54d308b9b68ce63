//! `link_building.crm.account.*` operations.

use crate::catalogue::OpSpec;

pub fn ops() -> Vec<OpSpec> {
    vec![]
}
