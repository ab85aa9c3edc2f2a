//! The layering holds by construction, and these checks keep it that way: handlers in `src/web/`
//! never reach the store (every read and write goes through a domain function, which records its
//! event), and never decide access themselves (the route table's rule does, in `web::authz`).

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// `(file, line number, line)` of every line under `src/web/` containing one of `patterns`,
/// comments left out.
fn web_lines_with(patterns: &[&str], except: &[&str]) -> Vec<String> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut hits = Vec::new();
    for file in sources(&web) {
        let name = file
            .strip_prefix(&web)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if except.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if patterns.iter().any(|p| code.contains(p)) {
                hits.push(format!("src/web/{name}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn handlers_never_reach_the_store() {
    let hits = web_lines_with(&["crate::store", ".store", "Store::", "store::"], &[]);
    assert!(
        hits.is_empty(),
        "the web layer reaches the store; call a domain function instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn handlers_never_check_permissions_by_hand() {
    // Showing or hiding a button with `current.may(..)` / `page.may(..)` is presentation; refusing
    // a request is the route rule's job, and only `authz` (and the extractors and navigation it
    // feeds) may ask the permission model directly.
    let hits = web_lines_with(
        &["require(", "rbac::may", "may(&"],
        &["authz.rs", "extractors.rs", "mod.rs"],
    );
    assert!(
        hits.is_empty(),
        "a handler decides access by hand; put the rule in the route table instead:\n{}",
        hits.join("\n")
    );
}
