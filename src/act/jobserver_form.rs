//! Which `--jobserver-auth` form a job's build tools get (`resctl run --jobserver-style`).
//!
//! Every client reads only the last `--jobserver-auth` in `MAKEFLAGS`, and the forms do not
//! overlap: GNU make ≤ 4.3 reads only `R,W` (it stops on `fifo:PATH`), ninja ≥ 1.13 only
//! `fifo:PATH` (it warns and ignores `R,W`); make ≥ 4.4 and cargo read both. So one form is
//! chosen per job: the pipe form unless asked otherwise or the job is ninja itself, since
//! shrinking is exact with it (see [`super::jobserver`]); and a job given the fifo form while
//! the `make` on its PATH is older than 4.4 is warned that recipes running make will fail.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::jobserver::AuthForm;

/// Programs that read only the fifo form on POSIX.
const FIFO_ONLY_CLIENTS: [&str; 1] = ["ninja"];

/// First GNU make that reads the fifo form: 4.4.
const MAKE_WITH_FIFO: (u32, u32) = (4, 4);

/// The form for a job running `program`, and why: `requested` when given, else the fifo
/// form for a fifo-only client (ninja) and the pipe form for everything else.
pub fn choose(requested: Option<AuthForm>, program: &OsStr) -> (AuthForm, &'static str) {
    if let Some(form) = requested {
        return (form, "as asked by --jobserver-style");
    }
    let name = Path::new(program)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or_default();
    if FIFO_ONLY_CLIENTS.contains(&name) {
        (AuthForm::Fifo, "ninja reads only the fifo form")
    } else {
        (
            AuthForm::Pipe,
            "GNU make ≥ 4.2 and cargo read it; --jobserver-style=fifo for ninja inside the job",
        )
    }
}

/// `(major, minor)` from the first line of `make --version` when it is GNU make
/// ("GNU Make 4.3").
pub fn gnu_make_version(version_output: &str) -> Option<(u32, u32)> {
    let line = version_output.lines().next()?;
    let version = line.strip_prefix("GNU Make ")?.split_whitespace().next()?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |minor| {
        minor
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    })?;
    Some((major, minor))
}

/// A warning when `form` is the fifo form and the GNU make whose `--version` printed
/// `version_output` cannot read it.
pub fn fifo_warning(form: AuthForm, version_output: &str) -> Option<String> {
    let version = gnu_make_version(version_output)?;
    (form == AuthForm::Fifo && version < MAKE_WITH_FIFO).then(|| {
        format!(
            "--jobserver: the make on PATH is GNU make {}.{}, which stops on the fifo form \
             (\"invalid --jobserver-auth string\"): recipes that run make will fail; \
             --jobserver-style=pipe serves make but not ninja",
            version.0, version.1
        )
    })
}

/// [`fifo_warning`] for the `make` on PATH (no warning when there is none).
pub fn fifo_warning_for_path_make(form: AuthForm) -> Option<String> {
    if form != AuthForm::Fifo {
        return None;
    }
    let output = Command::new("make")
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("MAKEFLAGS")
        .output()
        .ok()?;
    fifo_warning(form, &String::from_utf8_lossy(&output.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninja_gets_the_fifo_form_and_the_rest_the_pipe_form() {
        let choose_for = |program: &str| choose(None, OsStr::new(program)).0;
        assert_eq!(choose_for("/usr/bin/ninja"), AuthForm::Fifo);
        assert_eq!(choose_for("ninja"), AuthForm::Fifo);
        assert_eq!(choose_for("make"), AuthForm::Pipe);
        assert_eq!(choose_for("cargo"), AuthForm::Pipe);
        assert_eq!(choose_for("./build.sh"), AuthForm::Pipe);
        assert_eq!(choose_for(""), AuthForm::Pipe);
        let asked = choose(Some(AuthForm::Fifo), OsStr::new("make"));
        assert_eq!(asked, (AuthForm::Fifo, "as asked by --jobserver-style"));
        assert_eq!(
            choose(Some(AuthForm::Pipe), OsStr::new("ninja")).0,
            AuthForm::Pipe
        );
    }

    #[test]
    fn gnu_make_versions_are_read() {
        let make_43 = "GNU Make 4.3\nBuilt for x86_64-pc-linux-gnu\nCopyright (C) 1988-2020";
        assert_eq!(gnu_make_version(make_43), Some((4, 3)));
        assert_eq!(gnu_make_version("GNU Make 4.4.1\n"), Some((4, 4)));
        assert_eq!(gnu_make_version("GNU Make 4\n"), Some((4, 0)));
        assert_eq!(gnu_make_version("GNU Make 3.82.90-rc1"), Some((3, 82)));
        assert_eq!(gnu_make_version("bmake 20200710"), None);
        assert_eq!(gnu_make_version(""), None);
        assert_eq!(gnu_make_version("GNU Make x.y"), None);
    }

    #[test]
    fn fifo_form_warns_only_for_make_before_4_4() {
        let warning = fifo_warning(AuthForm::Fifo, "GNU Make 4.3\n").unwrap();
        assert!(warning.contains("GNU make 4.3"), "{warning}");
        assert!(warning.contains("--jobserver-style=pipe"), "{warning}");
        assert_eq!(fifo_warning(AuthForm::Fifo, "GNU Make 4.4.1\n"), None);
        assert_eq!(fifo_warning(AuthForm::Pipe, "GNU Make 4.3\n"), None);
        assert_eq!(fifo_warning(AuthForm::Fifo, "not make"), None);
        assert_eq!(fifo_warning_for_path_make(AuthForm::Pipe), None);
    }
}
