//! What the workspace's tests share about the world outside Cargo: tests that need software or
//! data that a fresh machine may lack (Chromium and chromedriver, Fashion-MNIST) say plainly
//! that they did not run, on a line of their own in the test output, and pass; where
//! [`REQUIRE_ALL`] is set (CI sets it) a missing requirement fails the test instead, so that
//! nothing passes there without running.
//!
//! ```
//! use baal_test_support::require_program;
//!
//! // `None` (after one line on standard error) when `sh` is neither named by $BAAL_SH nor
//! // on the PATH; with BAAL_TEST_REQUIRE_ALL=1 that would be a panic.
//! if let Some(sh) = require_program("sh", "BAAL_SH", "apt-get install dash") {
//!     assert!(sh.is_file());
//! }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable that turns "not run" into a failure: set to `1`, every test whose
/// requirement is missing panics with the reason.
pub const REQUIRE_ALL: &str = "BAAL_TEST_REQUIRE_ALL";

/// How to install Fashion-MNIST where the tests look for it (`baal_data::FashionMnist::DEFAULT_DIR`).
pub const FASHION_MNIST_INSTALL: &str = "apt-get install dataset-fashion-mnist";

/// Whether missing requirements fail the tests ([`REQUIRE_ALL`] is `1`).
#[must_use]
pub fn requirements_mandatory() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|value| value == "1")
}

/// Reports that the running test cannot run because `why`: a panic when
/// [`requirements_mandatory`], else one line on standard error, written past the test
/// harness's output capture so that it shows in `cargo test`'s output.
///
/// # Panics
/// When [`REQUIRE_ALL`] is `1`.
pub fn not_run(why: &str) {
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "a test".to_string(),
    };
    if requirements_mandatory() {
        panic!("{test} cannot run: {why} ({REQUIRE_ALL}=1 makes this a failure)");
    }
    // `eprintln!` is captured by the harness and shown only for failing tests; a write to the
    // standard error handle is not.
    let line = format!("NOT RUN {test}: {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The folder `dir` when it exists, else `None` after [`not_run`] naming it and `remedy`.
///
/// # Panics
/// When the folder is missing and [`REQUIRE_ALL`] is `1`.
#[must_use]
pub fn require_dir(dir: impl AsRef<Path>, remedy: &str) -> Option<PathBuf> {
    let dir = dir.as_ref();
    if dir.is_dir() {
        Some(dir.to_path_buf())
    } else {
        not_run(&format!("{} is missing ({remedy})", dir.display()));
        None
    }
}

/// The program `name`: the path in the environment variable `override_var` when it is set,
/// else the first `name` on the `PATH`; `None` after [`not_run`] naming `install` when neither
/// gives a file.
///
/// # Panics
/// When the program is missing and [`REQUIRE_ALL`] is `1`.
#[must_use]
pub fn require_program(name: &str, override_var: &str, install: &str) -> Option<PathBuf> {
    let found = match std::env::var_os(override_var) {
        Some(path) => Some(PathBuf::from(path)).filter(|path| path.is_file()),
        None => on_path(name),
    };
    if found.is_none() {
        not_run(&format!(
            "{name} not found (${override_var} or the PATH; {install})"
        ));
    }
    found
}

/// The first file called `name` in a folder of the `PATH`.
#[must_use]
pub fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The name under which the test harness of a merged integration-test binary knows the test
/// `function` of the module whose `module_path!()` is `module`: the module path without the
/// binary's own crate name, then the function (`"integration::crash"`, `"crash_child"` →
/// `"crash::crash_child"`). Tests that re-run their own binary as a child process pass it to
/// `--exact`.
#[must_use]
pub fn test_name(module: &str, function: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{function}"),
        None => function.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn test_names_drop_the_binary() {
        assert_eq!(test_name("integration::crash", "child"), "crash::child");
        assert_eq!(test_name("integration::a::b", "f"), "a::b::f");
        assert_eq!(test_name("integration", "f"), "f");
    }

    #[test]
    fn a_present_folder_is_itself() {
        let here = std::env::current_dir().expect("a working folder");
        assert_eq!(require_dir(&here, "none"), Some(here));
    }

    #[test]
    fn a_program_is_found_on_the_path() {
        let Some(sh) = on_path("sh") else {
            not_run("no sh on the PATH");
            return;
        };
        let unset = "BAAL_TEST_SUPPORT_UNSET_VARIABLE";
        assert_eq!(require_program("sh", unset, "none"), Some(sh));
    }

    /// Run by the two tests below as a child process.
    #[test]
    #[ignore = "a child process of the tests below"]
    fn child_with_a_missing_folder() {
        assert_eq!(require_dir("/no/such/folder/anywhere", "remedy X"), None);
    }

    fn run_child(mandatory: bool) -> std::process::Output {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe);
        child.args([
            "tests::child_with_a_missing_folder",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ]);
        if mandatory {
            child.env(REQUIRE_ALL, "1");
        } else {
            child.env_remove(REQUIRE_ALL);
        }
        child.output().expect("runs the child")
    }

    #[test]
    fn a_missing_requirement_is_one_line_that_shows_through_the_capture() {
        let out = run_child(false);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("NOT RUN tests::child_with_a_missing_folder: /no/such/folder/anywhere is missing (remedy X)"),
            "{stderr}"
        );
    }

    #[test]
    fn a_missing_requirement_fails_when_requirements_are_mandatory() {
        let out = run_child(true);
        assert!(!out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("cannot run: /no/such/folder/anywhere is missing (remedy X)"),
            "{stdout}"
        );
    }
}
