//! Placed links (CONTRACT "Placed links"): what one check found, the link's state, and the rule
//! that moves a state with each check. Pure: the checker (`linkcrm_monitoring`) fetches and
//! parses, this decides.
//!
//! - A link is `pending` until first seen (live or at risk); a pending link never becomes lost.
//! - `missing`, `page_gone` and `redirected` make a seen link `lost` only when a second such
//!   result comes at least the confirmation time (1 h) after the first; the first schedules that
//!   re-check. Nothing but `unreachable` in between keeps the pair "in a row".
//! - Events: live or at risk → lost is LINK_LOST; lost → live or at risk is LINK_RESTORED; live ↔
//!   at risk, and pending → live or at risk (first seen), is LINK_CHANGED; a move to unknown none.
//! - `unreachable` never makes a link lost; only `unreachable` for over 7 days makes it `unknown`
//!   (no event). A link that comes back from `unknown` is judged against the state it had before.

use serde::{Deserialize, Serialize};

/// What one check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// The link is there, with the expected rel and anchor, on an indexable page.
    Live,
    /// The link is there but its rel is not the agreed one (nofollow, sponsored, ugc, or the page's
    /// robots `nofollow`).
    RelChanged,
    /// The link is there but its anchor text is not the agreed one.
    AnchorChanged,
    /// The page was fetched and the link is not in it (links inserted by JavaScript read as missing).
    Missing,
    /// The page answered 404 or 410.
    PageGone,
    /// The page redirected elsewhere, and the final page has no link.
    Redirected,
    /// The link is there but search engines are told not to index the page (meta robots,
    /// `X-Robots-Tag`, or robots.txt disallowing Googlebot).
    Noindex,
    /// The link is there but the page's `rel=canonical` names another page.
    Canonicalized,
    /// The check could not be made: DNS, connection, timeout, 5xx, 401/403, 429, robots.txt
    /// disallowing our checker, a page that is not HTML, the SSRF guard.
    Unreachable,
}

impl CheckResult {
    pub const ALL: [CheckResult; 9] = [
        CheckResult::Live,
        CheckResult::RelChanged,
        CheckResult::AnchorChanged,
        CheckResult::Missing,
        CheckResult::PageGone,
        CheckResult::Redirected,
        CheckResult::Noindex,
        CheckResult::Canonicalized,
        CheckResult::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Live => "live",
            CheckResult::RelChanged => "rel_changed",
            CheckResult::AnchorChanged => "anchor_changed",
            CheckResult::Missing => "missing",
            CheckResult::PageGone => "page_gone",
            CheckResult::Redirected => "redirected",
            CheckResult::Noindex => "noindex",
            CheckResult::Canonicalized => "canonicalized",
            CheckResult::Unreachable => "unreachable",
        }
    }

    /// The link was found on the page (whatever is wrong with it).
    pub fn found(self) -> bool {
        matches!(
            self,
            CheckResult::Live
                | CheckResult::RelChanged
                | CheckResult::AnchorChanged
                | CheckResult::Noindex
                | CheckResult::Canonicalized
        )
    }

    /// The page was read and the link is not there.
    pub fn absent(self) -> bool {
        matches!(self, CheckResult::Missing | CheckResult::PageGone | CheckResult::Redirected)
    }
}

/// A monitored link's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Not yet seen on its page.
    Pending,
    Live,
    /// There, but search engines may not count it (rel, anchor, noindex, canonical).
    AtRisk,
    /// Absent on two checks in a row at least the confirmation time apart.
    Lost,
    /// Nothing but `unreachable` for over 7 days.
    Unknown,
}

impl LinkState {
    pub const ALL: [LinkState; 5] =
        [LinkState::Pending, LinkState::Live, LinkState::AtRisk, LinkState::Lost, LinkState::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Pending => "pending",
            LinkState::Live => "live",
            LinkState::AtRisk => "at_risk",
            LinkState::Lost => "lost",
            LinkState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<LinkState> {
        LinkState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The relationship event a state change writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// From live or at risk to lost.
    Lost,
    /// From lost to live or at risk.
    Restored,
    /// Between live and at risk, or first seen (from pending).
    Changed,
}

/// What the state machine keeps between checks (on the link's record).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub state: Option<LinkState>,
    /// The first of the current run of absent results (`missing`, `page_gone`, `redirected`).
    pub absent_since: Option<i64>,
    /// The first of the current run of `unreachable` results.
    pub unreachable_since: Option<i64>,
    /// While `unknown`: the state before it.
    pub before_unknown: Option<LinkState>,
}

/// The rule's timings, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How long after the first absent result the confirming one may come (1 h).
    pub confirm: i64,
    /// How long only `unreachable` makes a link `unknown` (7 days).
    pub unknown_after: i64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings { confirm: 3600, unknown_after: 7 * 86_400 }
    }
}

/// What one check does to a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub track: Track,
    pub from: LinkState,
    pub to: LinkState,
    /// The relationship event to write, if the state change has one.
    pub event: Option<LinkEvent>,
    /// The next check is the confirming one, due at this time (seconds), not the interval's.
    pub confirm_at: Option<i64>,
}

/// Applies one check's result at `now` (seconds).
pub fn step(track: &Track, result: CheckResult, now: i64, t: Timings) -> Step {
    let from = track.state.unwrap_or(LinkState::Pending);
    // What the link was before it went unknown is what a real result is judged against.
    let base = if from == LinkState::Unknown { track.before_unknown.unwrap_or(LinkState::Pending) } else { from };
    let mut next = track.clone();
    let mut confirm_at = None;
    let to = if result == CheckResult::Unreachable {
        let since = *next.unreachable_since.get_or_insert(now);
        if from != LinkState::Unknown && now - since > t.unknown_after {
            next.before_unknown = Some(from);
            LinkState::Unknown
        } else {
            from
        }
    } else {
        next.unreachable_since = None;
        if result.found() {
            next.absent_since = None;
            if result == CheckResult::Live {
                LinkState::Live
            } else {
                LinkState::AtRisk
            }
        } else {
            match base {
                // Never seen: it stays pending, whatever the page says.
                LinkState::Pending | LinkState::Unknown => {
                    next.absent_since = None;
                    LinkState::Pending
                }
                LinkState::Lost => LinkState::Lost,
                LinkState::Live | LinkState::AtRisk => {
                    let since = *next.absent_since.get_or_insert(now);
                    if now - since >= t.confirm {
                        LinkState::Lost
                    } else {
                        confirm_at = Some(since + t.confirm);
                        from
                    }
                }
            }
        }
    };
    next.state = Some(to);
    if to != LinkState::Unknown {
        next.before_unknown = None;
    }
    let event = match (base, to) {
        (_, LinkState::Unknown) => None,
        (LinkState::Live | LinkState::AtRisk, LinkState::Lost) => Some(LinkEvent::Lost),
        (LinkState::Lost, LinkState::Live | LinkState::AtRisk) => Some(LinkEvent::Restored),
        (LinkState::Live, LinkState::AtRisk) | (LinkState::AtRisk, LinkState::Live) => Some(LinkEvent::Changed),
        // First seen: the relationship's `linkStatus` leaves `pending` through an event too.
        (LinkState::Pending, LinkState::Live | LinkState::AtRisk) => Some(LinkEvent::Changed),
        _ => None,
    };
    Step { track: next, from, to, event, confirm_at }
}

/// The monitored link a LINK_PLACED starts: the event's own id under the `lnk_` prefix, so
/// starting it twice (a redelivered job, a backfill) makes one link.
pub fn link_id_of(event_id: &str) -> Option<String> {
    let body = event_id.strip_prefix(crate::IdKind::Event.prefix())?;
    crate::id::decode(body)?;
    Some(format!("{}{body}", crate::IdKind::Link.prefix()))
}

/// The LINK_PLACED a link came from (the inverse of [`link_id_of`]).
pub fn event_id_of(link_id: &str) -> Option<String> {
    let body = link_id.strip_prefix(crate::IdKind::Link.prefix())?;
    Some(format!("{}{body}", crate::IdKind::Event.prefix()))
}

/// The link state an event records, for the relationship's fold (`EventFacts::link`).
pub fn fact_of(
    r#type: crate::enums::EventType,
    event_id: &str,
    metadata: Option<&serde_json::Value>,
) -> Option<(String, String)> {
    use crate::enums::EventType as T;
    let meta = |k: &str| metadata.and_then(|m| m.get(k)).and_then(serde_json::Value::as_str);
    match r#type {
        T::LinkPlaced => {
            meta("linkUrl").filter(|u| !u.trim().is_empty())?;
            Some((link_id_of(event_id)?, LinkState::Pending.as_str().to_owned()))
        }
        T::LinkLost | T::LinkRestored | T::LinkChanged => {
            let to = LinkState::parse(meta("to")?)?;
            Some((meta("linkId")?.to_owned(), to.as_str().to_owned()))
        }
        _ => None,
    }
}

/// The relationship's `linkStatus`: the worst state among its links' latest events (lost, then
/// at risk, then live, then pending), `None` without links.
pub fn worst<'a>(states: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let rank = |s: &str| match s {
        "lost" => 4,
        "at_risk" => 3,
        "live" => 2,
        "pending" => 1,
        _ => 0,
    };
    states
        .into_iter()
        .map(|s| (rank(s), s))
        .max_by_key(|(r, _)| *r)
        .filter(|(r, _)| *r > 0)
        .and_then(|(_, s)| LinkState::parse(s).map(LinkState::as_str))
}

/// The expected rel's tokens from `metadata.rel`: follow (none) unless it names nofollow,
/// sponsored or ugc.
pub fn rel_tokens(raw: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = raw
        .unwrap_or("")
        .split([' ', ','])
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| matches!(t.as_str(), "nofollow" | "sponsored" | "ugc"))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckResult::*;
    use LinkState as S;

    const H: i64 = 3600;

    fn run(results: &[(CheckResult, i64)]) -> Vec<(LinkState, Option<LinkEvent>)> {
        let mut track = Track::default();
        let mut out = Vec::new();
        for (r, at) in results {
            let s = step(&track, *r, *at, Timings::default());
            out.push((s.to, s.event));
            track = s.track;
        }
        out
    }

    #[test]
    fn pending_until_seen_and_never_lost_before() {
        assert_eq!(
            run(&[(Missing, 0), (Missing, 2 * H), (PageGone, 4 * H), (Live, 5 * H)]),
            vec![(S::Pending, None), (S::Pending, None), (S::Pending, None), (S::Live, Some(LinkEvent::Changed))]
        );
        // Seen with a problem first: at risk, recorded as a change from pending.
        assert_eq!(run(&[(RelChanged, 0)]), vec![(S::AtRisk, Some(LinkEvent::Changed))]);
    }

    #[test]
    fn lost_only_after_a_confirming_check_an_hour_later() {
        let track = Track { state: Some(S::Live), ..Track::default() };
        let first = step(&track, Missing, 100, Timings::default());
        assert_eq!((first.to, first.event, first.confirm_at), (S::Live, None, Some(100 + H)));
        // Too soon (a check on demand): still live, the confirmation still due at the same time.
        let soon = step(&first.track, Redirected, 100 + 60, Timings::default());
        assert_eq!((soon.to, soon.event, soon.confirm_at), (S::Live, None, Some(100 + H)));
        // Unreachable in between neither confirms nor resets.
        let down = step(&soon.track, Unreachable, 100 + 120, Timings::default());
        assert_eq!((down.to, down.event), (S::Live, None));
        let confirmed = step(&down.track, PageGone, 100 + H, Timings::default());
        assert_eq!((confirmed.to, confirmed.event), (S::Lost, Some(LinkEvent::Lost)));
        // Found again in between resets the run.
        let back = step(&first.track, Live, 200, Timings::default());
        assert_eq!(back.track.absent_since, None);
        assert_eq!(step(&back.track, Missing, 100 + H, Timings::default()).to, S::Live);
    }

    #[test]
    fn events_between_states() {
        assert_eq!(
            run(&[
                (Live, 0),
                (RelChanged, H),
                (AnchorChanged, 2 * H),
                (Live, 3 * H),
                (Missing, 4 * H),
                (Missing, 5 * H),
                (Missing, 6 * H),
                (Live, 7 * H),
                (Noindex, 8 * H),
                (Missing, 9 * H),
                (Missing, 10 * H),
                (Canonicalized, 11 * H),
            ]),
            vec![
                (S::Live, Some(LinkEvent::Changed)),
                (S::AtRisk, Some(LinkEvent::Changed)),
                (S::AtRisk, None),
                (S::Live, Some(LinkEvent::Changed)),
                (S::Live, None),
                (S::Lost, Some(LinkEvent::Lost)),
                (S::Lost, None),
                (S::Live, Some(LinkEvent::Restored)),
                (S::AtRisk, Some(LinkEvent::Changed)),
                (S::AtRisk, None),
                (S::Lost, Some(LinkEvent::Lost)),
                (S::AtRisk, Some(LinkEvent::Restored)),
            ]
        );
    }

    #[test]
    fn unreachable_never_loses_and_goes_unknown_after_seven_days() {
        let day = 86_400;
        let r =
            run(&[(Live, 0), (Unreachable, day), (Unreachable, 5 * day), (Unreachable, 8 * day + 1), (Live, 9 * day)]);
        assert_eq!(
            r,
            vec![
                (S::Live, Some(LinkEvent::Changed)),
                (S::Live, None),
                (S::Live, None),
                (S::Unknown, None),
                (S::Live, None)
            ]
        );
        // Lost, unknown, then found: restored (judged against lost).
        let r = run(&[
            (Live, 0),
            (Missing, H),
            (Missing, 2 * H),
            (Unreachable, 3 * H),
            (Unreachable, 10 * day),
            (Live, 11 * day),
        ]);
        assert_eq!(r[3..], [(S::Lost, None), (S::Unknown, None), (S::Live, Some(LinkEvent::Restored))]);
        // Live, unknown, then absent twice: lost from live.
        let r = run(&[
            (Live, 0),
            (Unreachable, H),
            (Unreachable, 9 * day),
            (Missing, 9 * day + H),
            (Missing, 9 * day + 2 * H),
        ]);
        assert_eq!(r[2..], [(S::Unknown, None), (S::Unknown, None), (S::Lost, Some(LinkEvent::Lost))]);
    }

    #[test]
    fn worst_and_rel_tokens() {
        assert_eq!(worst(["live", "lost", "pending"]), Some("lost"));
        assert_eq!(worst(["live", "at_risk"]), Some("at_risk"));
        assert_eq!(worst(Vec::<&str>::new()), None);
        assert_eq!(rel_tokens(Some("Sponsored nofollow,noopener")), vec!["nofollow", "sponsored"]);
        assert!(rel_tokens(None).is_empty());
    }
}
