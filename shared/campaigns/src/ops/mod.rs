//! The campaigns family's operations.

pub mod campaigns;
pub mod drafting;
pub mod drafts;
pub mod exports;
pub mod leads;
pub mod outreach;
pub mod reporting;
pub mod research;
pub mod templates;
pub mod writing;

use crate::catalogue::OpSpec;

pub fn catalogue() -> Vec<OpSpec> {
    vec![
        OpSpec::of::<templates::Create>(),
        OpSpec::of::<templates::List>(),
        OpSpec::of::<templates::Get>(),
        OpSpec::of::<templates::Update_>(),
        OpSpec::of::<templates::Delete>(),
        OpSpec::of::<templates::Render>(),
        OpSpec::of::<campaigns::Create>(),
        OpSpec::of::<campaigns::List>(),
        OpSpec::of::<campaigns::Get>(),
        OpSpec::of::<campaigns::Update_>(),
        OpSpec::of::<campaigns::GetMetrics>(),
        OpSpec::of::<campaigns::Pause>(),
        OpSpec::of::<campaigns::Resume>(),
        OpSpec::of::<campaigns::Toggle>(),
        OpSpec::of::<campaigns::Cancel>(),
        OpSpec::of::<campaigns::Complete>(),
        OpSpec::of::<campaigns::AddRelationships>(),
        OpSpec::of::<leads::Add>(),
        OpSpec::of::<leads::List>(),
        OpSpec::of::<leads::Get>(),
        OpSpec::of::<leads::SetStatus>(),
        OpSpec::of::<drafts::Drafts>(),
        OpSpec::of::<drafts::Approve>(),
        OpSpec::of::<drafts::Reject>(),
        OpSpec::of::<drafts::SendEmail>(),
        OpSpec::of::<exports::Export>(),
        OpSpec::of::<exports::Replies>(),
        OpSpec::of::<outreach::SerpStart>(),
        OpSpec::of::<outreach::SerpList>(),
        OpSpec::of::<outreach::SerpGet>(),
        OpSpec::of::<outreach::SerpDrafts>(),
        OpSpec::of::<outreach::SerpApprove>(),
        OpSpec::of::<outreach::SerpReject>(),
        OpSpec::of::<outreach::SerpUpdate>(),
        OpSpec::of::<outreach::SerpCancel>(),
        OpSpec::of::<outreach::CompetitorStart>(),
        OpSpec::of::<outreach::CompetitorList>(),
        OpSpec::of::<outreach::CompetitorGet>(),
        OpSpec::of::<outreach::CompetitorDrafts>(),
        OpSpec::of::<outreach::CompetitorApprove>(),
        OpSpec::of::<outreach::CompetitorReject>(),
        OpSpec::of::<outreach::CompetitorUpdate>(),
        OpSpec::of::<outreach::CompetitorCancel>(),
        OpSpec::of::<research::Serp>(),
        OpSpec::of::<research::Opportunities>(),
        OpSpec::of::<reporting::GetSnapshot>(),
        OpSpec::of::<writing::Generate>(),
        OpSpec::of::<writing::Personalize>(),
        OpSpec::of::<writing::SubjectSuggestions>(),
        OpSpec::of::<writing::FollowUp>(),
    ]
}
