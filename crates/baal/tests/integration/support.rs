//! What the tests of the `baal` binary share: running it, and reading a success or a
//! bad-input failure.

use std::process::{Command, Output};

/// Runs the `baal` binary with `args`.
pub fn baal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baal"))
        .args(args)
        .output()
        .expect("run baal")
}

/// The standard output of a run that succeeded.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The standard error of a run refused as bad input (exit code 2).
pub fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
