//! One placed-link check: fetch the publisher's page as a polite crawler would (robots.txt, one
//! request at a time per host, through the SSRF guard), then read it the way a search engine
//! would (rel, anchor, noindex, canonical) and name the result (`CheckResult`).
//!
//! - `urlnorm`: the URL form in which link targets and pages compare.
//! - `analyze`: pure reading of the HTML and headers.
//! - `fetch`: the HTTP side, with its limits.

pub mod analyze;
pub mod fetch;
pub mod urlnorm;

pub use analyze::{Expected, FoundLink, Page, Verdict};
pub use fetch::{Checker, Config, Outcome};
