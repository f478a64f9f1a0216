//! The promise behind "no secret in any output" (RELIABILITY.md): every end-to-end test ends with
//! a secret search over what it captured — `assert_no_secrets` (the test bed's secret values),
//! `assert_no_values` (a bed-less test's own), or a helper that calls one — or says in its body
//! why it has none (`// no secret search: <reason>`). This test reads the suite's sources and
//! names any test that does neither, so the promise stays true as tests are added.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The functions of one rustfmt-formatted source file: name → body. A top-level function ends at
/// the first line that is exactly `}` (rustfmt's layout).
fn functions(text: &str) -> Vec<(String, bool, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("fn ") else { continue };
        if line.starts_with(' ') || !line[..at].trim().chars().all(|c| "pubasync() ".contains(c)) {
            continue;
        }
        let name: String = line[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let attributes: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
            .copied()
            .collect();
        let is_test = attributes.iter().any(|a| a.starts_with("#[tokio::test"))
            && !attributes.iter().any(|a| a.starts_with("#[ignore"));
        let body: Vec<&str> = lines[i..]
            .iter()
            .take_while(|l| **l != "}")
            .copied()
            .collect();
        out.push((name, is_test, body.join("\n")));
    }
    out
}

#[test]
fn every_e2e_test_ends_with_a_secret_search() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let mut all: Vec<(String, String, bool, String)> = vec![];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "secret_search.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (name, is_test, body) in functions(&text) {
            all.push((file.clone(), name, is_test, body));
        }
    }
    // The helpers that search, and those that call one, to a fixed point.
    let mut searching: BTreeSet<String> = ["assert_no_secrets", "assert_no_values"]
        .map(String::from)
        .into();
    loop {
        let before = searching.len();
        for (_, name, _, body) in &all {
            if searching
                .iter()
                .any(|h| h != name && body.contains(&format!("{h}(")))
            {
                searching.insert(name.clone());
            }
        }
        if searching.len() == before {
            break;
        }
    }
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tests = 0;
    for (file, name, is_test, body) in &all {
        if !is_test {
            continue;
        }
        tests += 1;
        let searches = searching.contains(name) || body.contains("// no secret search: ");
        if !searches {
            missing.entry(file.clone()).or_default().push(name.clone());
        }
    }
    assert!(
        tests > 100,
        "found only {tests} tests: is the parser broken?"
    );
    assert!(
        missing.is_empty(),
        "these e2e tests end without a secret search (add assert_no_secrets, or say why not): {missing:#?}"
    );
}
