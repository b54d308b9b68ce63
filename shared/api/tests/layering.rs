//! The dependency rule, where Cargo cannot see it: inside a crate, only operations import
//! operations (library code and job handlers never call an operation, so any of them can move into
//! its own crate); between crates, a context or door never reaches into another crate's
//! operations (it calls the library functions made for that). And no library crate grows past a
//! quarter of the library code.

use std::path::{Path, PathBuf};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The crates with operations, and the doors over them.
const LAYERED: [&str; 7] = ["core", "crm", "outreach", "workspaces", "http", "webhooks", "agency"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code lines (comments skipped) of `file` containing any of `needles`.
fn offending(file: &Path, needles: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| needles.iter().any(|n| l.contains(n.as_str())))
        .map(|l| format!("{}: {}", file.display(), l.trim()))
        .collect()
}

#[test]
fn only_operations_import_operations() {
    let mut problems = Vec::new();
    for name in LAYERED {
        let src = Path::new(SHARED).join(name).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // Other crates' operations, from anywhere in this crate.
        let foreign: Vec<String> =
            LAYERED.iter().filter(|c| **c != name).map(|c| format!("linkcrm_{c}::ops")).collect();
        for file in &files {
            problems.extend(offending(file, &foreign));
            // This crate's operations, from outside `src/ops/` (lib.rs only declares the module).
            let inside_ops = file.strip_prefix(&src).unwrap().starts_with("ops");
            if !inside_ops && !file.ends_with("lib.rs") {
                problems.extend(offending(file, &["crate::ops".into(), "super::ops".into()]));
            }
        }
    }
    assert!(problems.is_empty(), "operations imported outside operations:\n{}", problems.join("\n"));
}

#[test]
fn no_library_crate_holds_more_than_a_quarter_of_the_library_code() {
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(SHARED).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let lines: usize = files.iter().map(|f| std::fs::read_to_string(f).unwrap().lines().count()).sum();
        sizes.push((src.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned(), lines));
    }
    let total: usize = sizes.iter().map(|s| s.1).sum();
    for (name, lines) in &sizes {
        assert!(lines * 4 <= total, "shared/{name} holds {lines} of {total} library lines (more than a quarter)");
    }
    assert!(sizes.len() >= 10, "found the library crates: {sizes:?}");
}

/// A string literal that starts like a storage key: capitals (and digits) then `#`, as `"WS#…"`.
fn key_literal(line: &str) -> bool {
    line.match_indices('"').any(|(i, _)| {
        let rest = &line[i + 1..];
        let caps = rest.chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit()).count();
        caps >= 2 && rest[caps..].starts_with('#')
    })
}

/// Storage keys are spelled in one module per crate (`keys.rs`), so the table's layout can be read
/// (and changed) in one place: nowhere else builds a `Key` or writes a key prefix.
#[test]
fn storage_keys_are_built_only_in_keys_modules() {
    let mut problems = Vec::new();
    for name in LAYERED.iter().chain(&["api"]) {
        let mut files = Vec::new();
        rust_files(&Path::new(SHARED).join(name).join("src"), &mut files);
        for file in files.iter().filter(|f| !f.ends_with("keys.rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                if key_literal(line) || line.contains("Key::new(") {
                    problems.push(format!("{}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "storage keys built outside keys.rs:\n{}", problems.join("\n"));
    assert!(key_literal(r#"format!("WS#{ws}#MBXS")"#) && !key_literal(r##""#META""##));
}

/// Each API function links the core and its own context, not the whole composition, so it stays
/// small and starts fast: its `[dependencies]` name no other context and not `linkcrm-api`.
#[test]
fn each_api_function_links_only_its_own_context() {
    let functions = Path::new(SHARED).join("../functions");
    let contexts = ["linkcrm-crm", "linkcrm-outreach", "linkcrm-workspaces", "linkcrm-api"];
    // The contexts a family's function may link: its own, and the ones that context uses.
    let allowed: [(&str, &[&str]); 4] = [
        ("crm", &["linkcrm-crm"]),
        ("outreach", &["linkcrm-outreach", "linkcrm-crm"]),
        ("agent", &[]),
        ("workspaces", &["linkcrm-workspaces", "linkcrm-crm"]),
    ];
    for (function, may) in allowed {
        let manifest = std::fs::read_to_string(functions.join(function).join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
        for c in contexts {
            let linked = deps
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{c}.")) || l.trim_start().starts_with(&format!("{c} ")));
            assert!(!linked || may.contains(&c), "functions/{function} links {c}");
        }
    }
}
