//! # stockmesh-process
//!
//! The plumbing of stockmesh as OS processes, shared by the binary, the testkit, the fault suite
//! (`stockmesh-chaos`) and the benchmark (`stockmesh-bench`): launching nodes, and a node's own
//! owner-only files and stop signal. It depends on no other stockmesh crate, so everything can
//! use it without an import circle.
//!
//! ## Layout
//! - [`launcher`]: [`Launcher`] and [`NodeProcess`]: a node as a child process of the binary,
//!   its URL read from the line it prints, killed (SIGKILL), terminated (SIGTERM), restarted.
//! - [`port`]: [`free_port`]: a port of 127.0.0.1 that nothing listens on.
//! - [`duration`]: [`parse_duration`]: the `250ms` / `30s` / `5m` / `1h` syntax of every
//!   duration flag ([`parse_ttl`] adds days, for token lifetimes).
//! - [`shutdown`]: [`shutdown::signal`]: the first Ctrl-C or SIGTERM.
//! - [`private`]: files only this user may read (key files, TLS keys, data directories).

pub mod duration;
pub mod launcher;
pub mod port;
pub mod private;
pub mod shutdown;

pub use duration::{DurationError, parse_duration, parse_ttl};
pub use launcher::{LaunchError, Launcher, NodeProcess};
pub use port::free_port;
pub use private::FileError;
