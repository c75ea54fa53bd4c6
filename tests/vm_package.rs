//! The Debian package (`packaging/build-deb.sh`) installed in the VM test bed: the binary in
//! /usr/bin, the units that `systemd-analyze verify` accepts, the configuration as a
//! conffile, the man page and completion scripts. `#[ignore = "needs VM"]`; the VM runner
//! stages the newest `target/debian/resctl_*.deb`. Without one the test fails when
//! `RESCTL_TEST_REQUIRE_DEB=1` (as `tests/run-all.sh` sets it) and is skipped otherwise.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{stderr, stdout};

/// The staged package, if any.
fn staged_package() -> Option<PathBuf> {
    let share = PathBuf::from(std::env::var_os("RESCTL_SHARE")?);
    std::fs::read_dir(share.join("target/debian"))
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
}

/// Where an /etc/resctl that an earlier test left (vm_daemon writes a configuration there)
/// waits while the package is installed, so the install is a first install as on a user's
/// machine: with a foreign /etc/resctl/resctl.yaml in place dpkg asks about the conffile and,
/// with no terminal, fails.
const ASIDE: &str = "/etc/resctl.vm-package-aside";

/// Puts the runner's /usr/bin/resctl link and any earlier /etc/resctl back when the test ends,
/// passed or not (purging the package first if a failed assertion left it installed).
struct RestoreRunnersState {
    link: Option<PathBuf>,
    moved_etc: bool,
}

impl Drop for RestoreRunnersState {
    fn drop(&mut self) {
        // A no-op (exit 0) once the test purged the package itself.
        let _ = run("dpkg", &["-P", "resctl"]);
        if self.moved_etc {
            let _ = std::fs::remove_dir_all("/etc/resctl");
            let _ = std::fs::rename(ASIDE, "/etc/resctl");
        }
        let Some(link) = &self.link else { return };
        if std::fs::read_link("/usr/bin/resctl").ok().as_ref() == Some(link) {
            return;
        }
        let _ = std::fs::remove_file("/usr/bin/resctl");
        let _ = std::os::unix::fs::symlink(link, "/usr/bin/resctl");
    }
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program).args(args).output().unwrap()
}

#[test]
#[ignore = "needs VM"]
fn the_package_installs_a_working_resctl_its_units_man_page_and_completions() {
    let Some(package) = staged_package() else {
        assert!(
            std::env::var("RESCTL_TEST_REQUIRE_DEB").ok().as_deref() != Some("1"),
            "no target/debian/resctl_*.deb staged: run packaging/build-deb.sh first"
        );
        eprintln!("skipped: no package staged (packaging/build-deb.sh builds one)");
        return;
    };
    // The runner links /usr/bin/resctl to the binary under test (the units name it): the
    // package replaces that link, and the link is put back when the package is gone, so the
    // test binaries after this one find what they found before.
    let _ = std::fs::remove_dir_all(ASIDE);
    let moved_etc = std::path::Path::new("/etc/resctl").exists();
    if moved_etc {
        std::fs::rename("/etc/resctl", ASIDE).unwrap();
    }
    let restore = RestoreRunnersState {
        link: std::fs::read_link("/usr/bin/resctl").ok(),
        moved_etc,
    };
    let installed = run("dpkg", &["-i", &package.display().to_string()]);
    assert!(
        installed.status.success(),
        "dpkg -i failed: {}\n{}",
        stderr(&installed).trim(),
        stdout(&installed).trim()
    );

    let version = run("/usr/bin/resctl", &["--version"]);
    assert!(version.status.success(), "{}", stderr(&version));
    assert!(
        stdout(&version).starts_with("resctl "),
        "{}",
        stdout(&version)
    );
    let doctor = run("/usr/bin/resctl", &["doctor"]);
    assert!(doctor.status.success(), "{}", stderr(&doctor));

    // The units point at /usr/bin and verify.
    for unit in ["resctl.service", "resctl-job@.service", "pipelines.slice"] {
        let path = format!("/usr/lib/systemd/system/{unit}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("/usr/local/"), "{path} points at /usr/local");
        let target = if unit == "resctl-job@.service" {
            "/usr/lib/systemd/system/resctl-job@demo.service".to_owned()
        } else {
            path.clone()
        };
        if target != path {
            std::fs::copy(&path, &target).unwrap();
        }
        // --man=no: the image has no man-db to look up the units' Documentation= pages.
        let verify = run("systemd-analyze", &["verify", "--man=no", &target]);
        if target != path {
            let _ = std::fs::remove_file(&target);
        }
        assert!(
            verify.status.success() && stderr(&verify).trim().is_empty(),
            "systemd-analyze verify {unit}: {}",
            stderr(&verify)
        );
    }

    // The configuration is a conffile and checks.
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", "resctl"]);
    assert!(
        stdout(&conffiles).contains("/etc/resctl/resctl.yaml"),
        "{}",
        stdout(&conffiles)
    );
    let check = run(
        "/usr/bin/resctl",
        &["config", "check", "/etc/resctl/resctl.yaml"],
    );
    assert!(check.status.success(), "{}", stderr(&check));

    // The man page is the binary's own, compressed (the image has no man-db to render it).
    let man = run("sh", &["-c", "zcat /usr/share/man/man1/resctl.1.gz"]);
    assert!(man.status.success(), "{}", stderr(&man));
    let page = stdout(&man);
    assert!(
        page.contains(".TH resctl 1"),
        "{}",
        &page[..page.len().min(300)]
    );
    let own = run("/usr/bin/resctl", &["man"]);
    assert_eq!(
        page,
        stdout(&own),
        "the packaged man page is not `resctl man`'s"
    );

    // bash loads the completion script and completes the subcommands.
    let bash = run(
        "bash",
        &[
            "-c",
            "source /usr/share/bash-completion/completions/resctl && complete -p resctl && \
             COMP_WORDS=(resctl da) COMP_CWORD=1 && _resctl resctl da resctl && \
             printf '%s\\n' \"${COMPREPLY[@]}\"",
        ],
    );
    assert!(bash.status.success(), "{}", stderr(&bash));
    assert!(
        stdout(&bash).lines().any(|line| line == "daemon"),
        "{}",
        stdout(&bash)
    );
    for script in [
        "/usr/share/zsh/vendor-completions/_resctl",
        "/usr/share/fish/vendor_completions.d/resctl.fish",
    ] {
        let text = std::fs::read_to_string(script).unwrap_or_default();
        assert!(text.contains("resctl"), "{script} is empty or missing");
    }

    let purged = run("dpkg", &["-P", "resctl"]);
    assert!(purged.status.success(), "dpkg -P: {}", stderr(&purged));
    assert!(
        !std::path::Path::new("/usr/bin/resctl").exists(),
        "dpkg -P left /usr/bin/resctl"
    );
    // The runner's link is back for the test binaries that follow.
    let had_link = restore.link.is_some();
    drop(restore);
    if had_link {
        assert!(
            std::fs::read_link("/usr/bin/resctl").is_ok(),
            "the runner's /usr/bin/resctl link was not put back"
        );
    }
}
