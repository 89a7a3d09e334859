//! The documents that name tests stay true to them.

use std::path::Path;

/// Every `fn pNN_…` test name in the source, once.
fn promise_tests(dir: &Path, out: &mut std::collections::BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                promise_tests(&path, out);
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("fn p") {
            let name: String = text[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let b = name.as_bytes();
            if b.len() > 4 && b[1].is_ascii_digit() && b[2].is_ascii_digit() && b[3] == b'_' {
                out.insert(name);
            }
        }
    }
}

/// `docs/promises.md` names every test named for a promise, so the table of
/// what guards each promise cannot fall behind the tests.
#[test]
fn promises_doc_names_every_promise_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tests = std::collections::BTreeSet::new();
    for dir in ["crates", "src", "tests"] {
        promise_tests(&root.join(dir), &mut tests);
    }
    assert!(tests.len() > 80, "only {} promise tests found", tests.len());
    let doc = std::fs::read_to_string(root.join("docs/promises.md")).unwrap();
    let missing: Vec<&String> = tests
        .iter()
        .filter(|t| !doc.contains(&format!("`{t}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/promises.md does not name: {missing:?}"
    );
}
