//! The outreach family's operations.

pub mod inbound;
pub mod mailboxes;
pub mod policy;
pub mod send_email;
pub mod suppression;

use crate::catalogue::OpSpec;

pub fn catalogue() -> Vec<OpSpec> {
    let mut ops = vec![
        OpSpec::of::<suppression::Add>(),
        OpSpec::of::<suppression::List>(),
        OpSpec::of::<suppression::Remove>(),
        OpSpec::of::<mailboxes::Create>(),
        OpSpec::of::<mailboxes::List>(),
        OpSpec::of::<mailboxes::Get>(),
        OpSpec::of::<mailboxes::Patch>(),
        OpSpec::of::<mailboxes::Delete>(),
        OpSpec::of::<mailboxes::Connect>(),
        OpSpec::of::<inbound::Receive>(),
        OpSpec::of::<inbound::List>(),
        OpSpec::of::<inbound::Get>(),
        OpSpec::of::<inbound::Assign>(),
        OpSpec::of::<inbound::Poll>(),
    ];
    ops.extend(send_email::ops());
    ops.extend(policy::ops());
    ops
}
