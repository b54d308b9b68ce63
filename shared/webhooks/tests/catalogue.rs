//! Every event type the code writes to the outbox is in the catalogue (subscribable or internal),
//! and docs/webhooks.md lists the catalogue as it is. `linkcrm_core::outbox::event` also refuses
//! an unlisted type in every debug build, so a type built at run time fails the test that writes it.

use linkcrm_domain::event_types::{self, Visibility};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            if !p.ends_with("target") && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The string literal right after each `outbox::event(` (and `outbox::domain_event(`).
fn written_types(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["outbox::event(", "outbox::domain_event("] {
        let mut rest = text;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            let arg = rest.trim_start();
            if let Some(lit) = arg.strip_prefix('"') {
                if let Some(end) = lit.find('"') {
                    out.push(lit[..end].to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn every_type_written_to_the_outbox_is_in_the_catalogue() {
    let mut files = Vec::new();
    for d in ["shared", "src", "functions"] {
        rust_files(&root().join(d), &mut files);
    }
    let mut seen = 0;
    let mut unlisted = Vec::new();
    // Sources only: tests (this file among them) spell the markers without writing events.
    for f in files.iter().filter(|f| f.components().any(|c| c.as_os_str() == "src")) {
        let text = std::fs::read_to_string(f).unwrap();
        for t in written_types(&text) {
            seen += 1;
            if event_types::spec(&t).is_none() {
                unlisted.push(format!("{t} ({})", f.display()));
            }
        }
    }
    assert!(seen > 30, "the scan found the outbox writes ({seen})");
    assert!(unlisted.is_empty(), "event types written but not in the catalogue: {unlisted:?}");
    // Types built at run time: campaign transitions and invocation statuses.
    for t in [
        "link_building.campaign.paused",
        "link_building.campaign.resumed",
        "link_building.campaign.completed",
        "link_building.campaign.cancelled",
        "workspace.updated",
        "workspace.archived",
        "agent.invocation.awaiting_approval",
        "agent.invocation.completed",
        "agent.invocation.failed",
        "agent.invocation.cancelled",
        "link_building.email.sent",
        "link_building.email.received",
        "link_building.email.bounced",
        "link_building.email.opened",
    ] {
        assert!(event_types::is_subscribable(t), "{t}");
    }
}

#[test]
fn the_docs_list_the_catalogue() {
    let doc = std::fs::read_to_string(root().join("docs/webhooks.md")).unwrap();
    for s in event_types::CATALOGUE {
        let kind = match s.visibility {
            Visibility::Subscribable => "subscribable",
            Visibility::Internal => "internal",
        };
        let row = format!("| `{}` | {kind} |", s.name);
        assert!(doc.contains(&row), "docs/webhooks.md lacks the row {row}");
    }
    let rows =
        doc.lines().filter(|l| l.starts_with("| `") && (l.contains("| subscribable |") || l.contains("| internal |")));
    assert_eq!(rows.count(), event_types::CATALOGUE.len(), "docs/webhooks.md lists a type the catalogue does not have");
}
