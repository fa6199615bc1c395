//! The browser client's unit tests (`assets/tests/*.test.js`: the room's
//! status, the translations, the error codes), run by node's built-in test
//! runner: plain ES modules, no browser, no npm packages.
//!
//! Needs `node` on the PATH (Debian package `nodejs`); `NODE` names another.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn browser_client_unit_tests_pass_under_node() {
    let files = files_in("assets/tests", ".test.js");
    assert!(!files.is_empty(), "no *.test.js in assets/tests");

    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    // Files named one by one: older node versions take no directory.
    let output = Command::new(&node)
        .arg("--test")
        .args(&files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{node}` ({e}): install node (Debian: apt-get install nodejs) or set NODE")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{node} --test` failed with {}:\n{stdout}\n{stderr}",
        output.status
    );
    // Each file ran: a file that fails to load is a failure above, and one
    // with no tests would report none.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("# pass ") && l != "# pass 0"),
        "no test passed:\n{stdout}"
    );
}

/// Every module the page loads parses (`node --check`), so a syntax error
/// in any of them fails here in a second rather than as a page that never
/// starts in a browser test.
#[test]
fn every_browser_module_parses() {
    let files = files_in("assets", ".js");
    assert!(files.len() >= 10, "too few modules in assets: {files:?}");
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    for file in &files {
        let output = Command::new(&node)
            .arg("--check")
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{node}` ({e}): install node or set NODE"));
        assert!(
            output.status.success(),
            "{} does not parse:\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The files in `dir` (below the crate) whose names end with `suffix`,
/// sorted.
fn files_in(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}
