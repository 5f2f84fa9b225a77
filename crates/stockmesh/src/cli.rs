//! The command line. Every flag has an environment variable of the same meaning.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use stockmesh_bus::Durability;
use stockmesh_core::StoreId;

/// stockmesh: a chain's stock, propagated in milliseconds, never oversold.
#[derive(Debug, Parser)]
#[command(name = "stockmesh", version, about, long_about = None)]
pub struct Cli {
    /// Log output: `human` for people, `json` for log collectors. Filter with RUST_LOG.
    #[arg(long, global = true, env = "STOCKMESH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one Store node: its HTTP API over its own SQLite database.
    Store(StoreArgs),
}

/// Flags of `stockmesh store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The store's id (1-64 characters of A-Z a-z 0-9 . _ -).
    #[arg(long, env = "STOCKMESH_STORE_ID")]
    pub id: StoreId,

    /// Address for the HTTP API.
    #[arg(long, env = "STOCKMESH_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,

    /// The store's SQLite database (created with its directory if missing).
    /// Default: sqlite://./data/<id>.db
    #[arg(long, env = "STOCKMESH_DB")]
    pub db: Option<String>,

    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Flags about local storage, shared by every node.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Commit durability: `full` (fsync every commit; survives power loss) or `normal` (may lose
    /// the last commits on power loss, never corrupts).
    #[arg(long, env = "STOCKMESH_DURABILITY", default_value = "full")]
    pub durability: Durability,
}
