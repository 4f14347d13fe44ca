//! The `metal-marlin` binary: parses the command line and hands off to a command.

mod args;
mod cmd;
mod common;

use clap::Parser;

use args::{BenchCommand, Cli, Command};

fn main() {
    // Mesa's Vulkan drivers print a wayland error on every adapter probe when this is unset
    // (headless servers, CI); the GPU path never opens a display, so any directory will do.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cmd::run::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Chat(a) => cmd::chat::run(a),
        Command::Eval(c) => cmd::eval::run(c),
        Command::Bench(mut a) => match a.kind.take() {
            Some(BenchCommand::Kernels(k)) => cmd::bench_kernels::run(k),
            Some(BenchCommand::Serve(k)) => cmd::bench_serve::run(k),
            None => cmd::bench::run(a),
        },
        Command::Devices => cmd::devices::run(),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Serve(a) => cmd::serve::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
