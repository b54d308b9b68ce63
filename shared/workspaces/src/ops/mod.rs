//! The workspaces family's operations.

pub mod api_keys;
pub mod credits;
pub mod integrations;
pub mod members;
pub mod provider_keys;
pub mod workspaces;

use crate::catalogue::OpSpec;

pub fn catalogue() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<workspaces::Create>(),
        OpSpec::of::<workspaces::List>(),
        OpSpec::of::<workspaces::Get>(),
        OpSpec::of::<workspaces::Patch>(),
        OpSpec::of::<workspaces::Archive>(),
        OpSpec::of::<workspaces::Current>(),
        OpSpec::of::<api_keys::Create>(),
        OpSpec::of::<api_keys::List>(),
        OpSpec::of::<api_keys::Revoke>(),
        OpSpec::of::<api_keys::AgencyCreate>(),
        OpSpec::of::<api_keys::AgencyList>(),
        OpSpec::of::<api_keys::AgencyRevoke>(),
        OpSpec::of::<members::Create>(),
        OpSpec::of::<members::List>(),
        OpSpec::of::<members::Delete>(),
        OpSpec::of::<credits::Grant>(),
        OpSpec::of::<credits::GetUsage>(),
        OpSpec::of::<integrations::SetApollo>(),
        OpSpec::of::<integrations::GetApollo>(),
        OpSpec::of::<integrations::RemoveApollo>(),
        OpSpec::of::<provider_keys::Set<provider_keys::DataForSeo>>(),
        OpSpec::of::<provider_keys::Get<provider_keys::DataForSeo>>(),
        OpSpec::of::<provider_keys::Remove<provider_keys::DataForSeo>>(),
        OpSpec::of::<provider_keys::Set<provider_keys::Ahrefs>>(),
        OpSpec::of::<provider_keys::Get<provider_keys::Ahrefs>>(),
        OpSpec::of::<provider_keys::Remove<provider_keys::Ahrefs>>(),
        OpSpec::of::<provider_keys::Set<provider_keys::Llm>>(),
        OpSpec::of::<provider_keys::Get<provider_keys::Llm>>(),
        OpSpec::of::<provider_keys::Remove<provider_keys::Llm>>(),
    ]
}
