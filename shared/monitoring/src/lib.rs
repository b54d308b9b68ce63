//! The monitoring context: placed links (CONTRACT "Placed links", ADR 0015, docs/links.md).
//!
//! - Every LINK_PLACED with a `metadata.linkUrl` becomes a monitored link (`track`, from the job
//!   the event commits with; `linkcrm links backfill` for older ones).
//! - A tick dispatches the links that are due, from a sharded due index, one `link_check` job
//!   each (`schedule`); the job fetches the page through the SSRF guard (`check`), applies the
//!   domain's state rule and commits the check, the link's new state, the relationship event and
//!   the outbox event in one transaction (`run`).
//! - The operations (`ops`): list, get, checks, check now, correct, summary.

#![allow(clippy::result_large_err)]

pub mod check;
pub mod keys;
pub mod ops;
pub mod records;
pub mod run;
pub mod schedule;
pub mod track;

use std::sync::OnceLock;
use std::time::Duration;

/// A check past the month's free ones costs this (thousandths of a credit): 0.05 credits.
pub const CHECK_COST_MILLI: i64 = 50;

/// The monitoring settings, from the environment.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Between two scheduled checks of a link (`LINKCRM_LINKCHECK_INTERVAL_HOURS`, 24; fractions
    /// allowed).
    pub interval: Duration,
    /// How long after a first absent result the confirming check comes
    /// (`LINKCRM_LINKCHECK_CONFIRM_SECS`, 3600).
    pub confirm_secs: i64,
    /// Only unreachable for this long makes a link unknown (`LINKCRM_LINKCHECK_UNKNOWN_AFTER_SECS`,
    /// 7 days).
    pub unknown_after_secs: i64,
    /// Free checks per workspace and calendar month (`LINKCRM_LINKCHECK_FREE_PER_MONTH`, 1000).
    pub free_per_month: i64,
    /// How long a dispatched check holds its link before the dispatcher may queue it again
    /// (`LINKCRM_LINKCHECK_LEASE_SECS`, 1800): a job lost with its worker is redone after it.
    pub lease: Duration,
    /// While checks are paused for credits, how often the link is looked at again (1 h, or the
    /// interval when shorter).
    pub pause_retry: Duration,
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite() && *v > 0.0)
}

impl Settings {
    pub fn from_env() -> Settings {
        let interval = Duration::from_secs_f64(env_f64("LINKCRM_LINKCHECK_INTERVAL_HOURS").unwrap_or(24.0) * 3600.0);
        Settings {
            interval,
            confirm_secs: env_f64("LINKCRM_LINKCHECK_CONFIRM_SECS").map(|v| v as i64).unwrap_or(3600),
            unknown_after_secs: env_f64("LINKCRM_LINKCHECK_UNKNOWN_AFTER_SECS").map(|v| v as i64).unwrap_or(7 * 86_400),
            free_per_month: std::env::var("LINKCRM_LINKCHECK_FREE_PER_MONTH")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|v: &i64| *v >= 0)
                .unwrap_or(1000),
            lease: Duration::from_secs_f64(env_f64("LINKCRM_LINKCHECK_LEASE_SECS").unwrap_or(1800.0)),
            pause_retry: interval.min(Duration::from_secs(3600)),
        }
    }

    pub fn timings(&self) -> linkcrm_domain::links::Timings {
        linkcrm_domain::links::Timings { confirm: self.confirm_secs, unknown_after: self.unknown_after_secs }
    }
}

/// The settings, read once.
pub fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(Settings::from_env)
}

/// The checker the handlers share (one connection pool, one robots.txt cache, the concurrency
/// limits), built on first use from the app's guard setting.
pub fn checker(app: &linkcrm_core::App) -> &'static check::fetch::Checker {
    static CHECKER: OnceLock<check::fetch::Checker> = OnceLock::new();
    CHECKER.get_or_init(|| check::fetch::Checker::new(app.config.guard(), check::fetch::Config::from_env()))
}
