//! Every operation, registered in one catalogue.

pub mod api_keys;
pub mod approvals;
pub mod credits;
pub mod crm;
pub mod inbound;
pub mod integrations;
pub mod invocations;
pub mod mailboxes;
pub mod policy;
pub mod suppression;
pub mod workspaces;

use crate::catalogue::OpSpec;

pub fn catalogue() -> Vec<OpSpec> {
    let mut ops = vec![
        OpSpec::of::<workspaces::Create>(),
        OpSpec::of::<workspaces::List>(),
        OpSpec::of::<workspaces::Get>(),
        OpSpec::of::<workspaces::Patch>(),
        OpSpec::of::<workspaces::Archive>(),
        OpSpec::of::<workspaces::Current>(),
        OpSpec::of::<api_keys::Create>(),
        OpSpec::of::<api_keys::List>(),
        OpSpec::of::<api_keys::Revoke>(),
        OpSpec::of::<credits::Grant>(),
        OpSpec::of::<credits::GetUsage>(),
        OpSpec::of::<integrations::SetApollo>(),
        OpSpec::of::<integrations::GetApollo>(),
        OpSpec::of::<integrations::RemoveApollo>(),
        OpSpec::of::<suppression::Add>(),
        OpSpec::of::<suppression::List>(),
        OpSpec::of::<suppression::Remove>(),
        OpSpec::of::<mailboxes::Create>(),
        OpSpec::of::<mailboxes::List>(),
        OpSpec::of::<mailboxes::Get>(),
        OpSpec::of::<mailboxes::Patch>(),
        OpSpec::of::<mailboxes::Delete>(),
        OpSpec::of::<inbound::Receive>(),
        OpSpec::of::<inbound::List>(),
        OpSpec::of::<inbound::Get>(),
        OpSpec::of::<inbound::Assign>(),
    ];
    ops.extend(crm::catalogue());
    ops.extend(invocations::ops());
    ops.extend(approvals::ops());
    ops.extend(policy::ops());
    ops
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique() {
        let cat = super::catalogue();
        let mut names = std::collections::HashSet::new();
        for op in &cat {
            assert!(names.insert(op.name), "duplicate operation {}", op.name);
        }
    }
}
