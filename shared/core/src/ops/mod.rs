//! The agent family's operations: invocations and approvals.

pub mod approvals;
pub mod invocations;

use crate::catalogue::OpSpec;

pub fn catalogue() -> Vec<OpSpec> {
    let mut ops = invocations::ops();
    ops.extend(approvals::ops());
    ops
}
