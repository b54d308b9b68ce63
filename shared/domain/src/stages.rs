//! Pipeline stages and opportunities (the seed 004 CRM's "leads"): a workspace's own stage list,
//! each stage mapped to one system status of the relationship pipeline, and the rule by which a
//! relationship's derived status moves its open opportunities along. Pure: no I/O.

use crate::enums::PipelineStatus;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What reaching a stage means for an opportunity: still open, won or lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Open => "open",
            StageKind::Won => "won",
            StageKind::Lost => "lost",
        }
    }
}

/// The stages every workspace starts with: one per pipeline status a relationship can hold
/// (CONTACTED_BY_OTHER_ORG is computed on read, so no stage holds it), in pipeline order.
/// `(name, kind, system status, default probability %, colour)`.
pub const DEFAULTS: [(&str, StageKind, PipelineStatus, u8, &str); 8] = [
    ("Prospecting", StageKind::Open, PipelineStatus::Prospecting, 10, "slate"),
    ("Approved to contact", StageKind::Open, PipelineStatus::ApprovedToContact, 15, "blue"),
    ("Queued", StageKind::Open, PipelineStatus::Queued, 20, "indigo"),
    ("Contacted", StageKind::Open, PipelineStatus::ContactedByUs, 30, "violet"),
    ("Engaged", StageKind::Open, PipelineStatus::ActivelyEngaged, 60, "amber"),
    ("Link placed", StageKind::Won, PipelineStatus::LinkPlaced, 100, "green"),
    ("Not interested", StageKind::Lost, PipelineStatus::NotInterested, 0, "red"),
    ("Inactive", StageKind::Lost, PipelineStatus::Inactive, 0, "gray"),
];

/// The statuses a stage may map to (every pipeline status but the computed one).
pub fn mappable(status: PipelineStatus) -> bool {
    status != PipelineStatus::ContactedByOtherOrg
}

/// How far along the pipeline a status is. The ends (placed, not interested, inactive) share the
/// last rank: none is "further along" than another.
pub fn rank(status: PipelineStatus) -> u8 {
    use PipelineStatus::*;
    match status {
        Prospecting => 0,
        ApprovedToContact => 1,
        Queued => 2,
        ContactedByUs | ContactedByOtherOrg => 3,
        ActivelyEngaged => 4,
        LinkPlaced | NotInterested | Inactive => 5,
    }
}

/// The default kind of a stage mapped to `status`.
pub fn default_kind(status: PipelineStatus) -> StageKind {
    match status {
        PipelineStatus::LinkPlaced => StageKind::Won,
        PipelineStatus::NotInterested | PipelineStatus::Inactive => StageKind::Lost,
        _ => StageKind::Open,
    }
}

/// The facts of one stage the rules need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageFacts<'a> {
    pub id: &'a str,
    pub kind: StageKind,
    pub system_key: PipelineStatus,
    pub sort_order: i64,
}

/// Where a relationship's derived status moves an open opportunity in stage `current`: the first
/// stage (by sort order) mapped to `status`, when `status` is further along than the current
/// stage's system status. None when it stays (already there or further, closed, or no stage has
/// that status).
pub fn follow<'a>(stages: &[StageFacts<'a>], current: &str, status: PipelineStatus) -> Option<&'a str> {
    let here = stages.iter().find(|s| s.id == current)?;
    if here.kind != StageKind::Open || rank(status) <= rank(here.system_key) {
        return None;
    }
    stages
        .iter()
        .filter(|s| s.system_key == status)
        .min_by_key(|s| s.sort_order)
        .map(|s| s.id)
        .filter(|id| *id != current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PipelineStatus::*;

    fn stages() -> Vec<StageFacts<'static>> {
        vec![
            StageFacts { id: "a", kind: StageKind::Open, system_key: Prospecting, sort_order: 0 },
            StageFacts { id: "b", kind: StageKind::Open, system_key: ContactedByUs, sort_order: 1 },
            StageFacts { id: "b2", kind: StageKind::Open, system_key: ContactedByUs, sort_order: 2 },
            StageFacts { id: "c", kind: StageKind::Open, system_key: ActivelyEngaged, sort_order: 4 },
            StageFacts { id: "c0", kind: StageKind::Open, system_key: ActivelyEngaged, sort_order: 3 },
            StageFacts { id: "w", kind: StageKind::Won, system_key: LinkPlaced, sort_order: 5 },
            StageFacts { id: "l", kind: StageKind::Lost, system_key: NotInterested, sort_order: 6 },
        ]
    }

    #[test]
    fn a_status_further_along_moves_to_its_first_stage() {
        let s = stages();
        assert_eq!(follow(&s, "a", ActivelyEngaged), Some("c0"));
        assert_eq!(follow(&s, "a", ContactedByUs), Some("b"));
        assert_eq!(follow(&s, "b2", LinkPlaced), Some("w"));
        assert_eq!(follow(&s, "c", NotInterested), Some("l"));
    }

    #[test]
    fn nothing_moves_back_or_sideways_or_out_of_a_closed_stage() {
        let s = stages();
        assert_eq!(follow(&s, "c", ContactedByUs), None);
        assert_eq!(follow(&s, "b2", ContactedByUs), None);
        assert_eq!(follow(&s, "w", NotInterested), None);
        assert_eq!(follow(&s, "l", LinkPlaced), None);
        // No stage maps to QUEUED here: nothing to move to.
        assert_eq!(follow(&s, "a", Queued), None);
        assert_eq!(follow(&s, "missing", LinkPlaced), None);
    }

    #[test]
    fn the_defaults_map_every_status_but_the_computed_one_once() {
        for st in PipelineStatus::ALL.iter().copied().filter(|s| mappable(*s)) {
            assert_eq!(DEFAULTS.iter().filter(|d| d.2 == st).count(), 1, "{st:?}");
            let d = DEFAULTS.iter().find(|d| d.2 == st).unwrap();
            assert_eq!(d.1, default_kind(st));
        }
        assert!(!DEFAULTS.iter().any(|d| d.2 == ContactedByOtherOrg));
    }
}
