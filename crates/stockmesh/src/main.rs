//! # stockmesh
//!
//! The one binary of stockmesh. Subcommands:
//! - `stockmesh up`: Central and N stores in one process.
//! - `stockmesh central`: one Central node.
//! - `stockmesh store --id store-1`: one Store node.
//! - `stockmesh bench`: the performance figures beside their goals (crate `stockmesh-bench`).
//! - `stockmesh chaos`: the fault suite (crate `stockmesh-chaos`).
//!
//! Every flag also reads an environment variable (`STOCKMESH_…`), so the same binary runs under
//! systemd, Compose or Kubernetes.
//!
//! ## Layout
//! - [`cli`]: the command line, flags and their environment variables.
//! - [`commands`]: what each subcommand runs.
//! - [`memory`]: the allocator, which returns freed memory to the system.
//!
//! Logs and traces are set up by the `stockmesh-telemetry` crate.

mod cli;
mod commands;
mod memory;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let telemetry = match stockmesh_telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("stockmesh: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    memory::return_freed_memory_in_the_background();
    // Every connection is a file descriptor: allow as many as the system lets this process have.
    match stockmesh_http::server::raise_open_file_limit() {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    let code = match commands::run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("stockmesh: {error:#}");
            std::process::ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}
