//! The agency family's operations.

pub mod audit;
pub mod bulk;
pub mod health;
pub mod schedules;

use linkcrm_core::catalogue::OpSpec;

pub(crate) const TAG: &str = "Agency";
pub(crate) const SCOPE: Option<&str> = Some("workspaces:admin");

pub fn catalogue() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<audit::WorkspaceAudit>(),
        OpSpec::of::<audit::OwnAudit>(),
        OpSpec::of::<health::GetHealth>(),
        OpSpec::of::<bulk::Run>(),
        OpSpec::of::<bulk::Get>(),
        OpSpec::of::<schedules::List>(),
        OpSpec::of::<schedules::Get>(),
        OpSpec::of::<schedules::UpdateSchedule>(),
        OpSpec::of::<schedules::DeleteSchedule>(),
    ]
}
