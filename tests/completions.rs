//! `resctl completions SHELL` and `resctl man`: generated from the command line's own
//! definition, so every subcommand is in them.

mod common;

use std::process::Command;

use common::{resctl, stderr, stdout};

fn generated(args: &[&str]) -> String {
    let output = resctl().args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

#[test]
fn the_bash_completion_parses_and_knows_every_subcommand() {
    let script = generated(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resctl.bash");
    std::fs::write(&path, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", stderr(&check));
    for subcommand in [
        "run",
        "bench",
        "daemon",
        "history",
        "doctor",
        "completions",
        "man",
    ] {
        assert!(
            script.contains(subcommand),
            "no {subcommand} in the bash completion"
        );
    }
}

#[test]
fn zsh_and_fish_completions_name_resctl_and_an_unknown_shell_is_refused() {
    assert!(generated(&["completions", "zsh"]).starts_with("#compdef resctl"));
    assert!(generated(&["completions", "fish"]).contains("complete -c resctl"));
    let output = resctl().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
}

#[test]
fn the_man_page_is_roff_with_the_subcommands() {
    let page = generated(&["man"]);
    assert!(
        page.contains(".TH resctl 1"),
        "{}",
        &page[..page.len().min(300)]
    );
    for subcommand in ["resctl\\-run", "resctl\\-daemon", "resctl\\-bench"] {
        assert!(page.contains(subcommand), "no {subcommand} in the man page");
    }
}
