//! The `resctl` binary: parses arguments and hands over to the library.

use clap::Parser;
use resctl::cli::{Cli, Command, ConfigCommand, StageCommand};
use resctl::commands;

fn main() {
    let raw_args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Usage errors are resctl's own failure before any job ran: 125,
            // like env(1) and timeout(1). --help and --version exit 0.
            let code = if err.use_stderr() {
                resctl::exit::RESCTL_FAILED
            } else {
                0
            };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    resctl::report::logging::init(cli.verbose);
    let outcome = match cli.command {
        Command::Run(args) => commands::run_job(args, raw_args),
        Command::Config(ConfigCommand::Check { file }) => commands::config_check(&file),
        Command::Config(ConfigCommand::Show {
            source,
            slice,
            resolved: false,
            ..
        }) => commands::config_show(&source, slice.as_deref()),
        Command::Config(ConfigCommand::Show {
            source,
            slice,
            resolved: true,
            memory_max,
            cgroup_parent,
        }) => commands::config_show_resolved(
            &source,
            slice.as_deref(),
            memory_max.as_deref(),
            cgroup_parent.as_deref(),
        ),
        Command::Doctor(args) => commands::doctor(&args),
        Command::Replay(args) => commands::replay(&args),
        Command::Stage(StageCommand::Start { name, workers }) => {
            commands::stage(true, &name, workers)
        }
        Command::Stage(StageCommand::End { name }) => commands::stage(false, &name, None),
        Command::Recommend(args) => commands::recommend(&args),
        Command::Status(args) => commands::status(&args),
        Command::Progress(args) => commands::progress(args.units),
        Command::Bench(args) => commands::bench(&args),
        Command::History(command) => commands::history(&command),
        Command::Daemon(args) => commands::daemon(&args),
        Command::Completions(args) => commands::completions(args.shell),
        Command::Man => commands::man_page(),
    };
    std::process::exit(commands::exit_code(outcome));
}
