//! The inbound family's operations.

pub mod gates;
pub mod respond;
pub mod settings;

use crate::catalogue::OpSpec;

pub fn catalogue() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<settings::GetSettings>(),
        OpSpec::of::<settings::UpdateSettings>(),
        OpSpec::of::<settings::GetMode>(),
        OpSpec::of::<settings::SetMode>(),
        OpSpec::of::<gates::Create>(),
        OpSpec::of::<gates::CreateAtAnchorPath>(),
        OpSpec::of::<gates::List>(),
        OpSpec::of::<gates::Get>(),
        OpSpec::of::<gates::Update>(),
        OpSpec::of::<gates::Delete>(),
        OpSpec::of::<gates::Versions>(),
        OpSpec::of::<respond::Respond>(),
    ]
}
