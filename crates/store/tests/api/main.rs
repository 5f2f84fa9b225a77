//! The Store's HTTP API, driven over real HTTP against a store on port 0 with a fresh SQLite file.

mod adjustments;
mod bad_input;
mod concurrency;
mod connectivity;
mod group_commit;
mod inventory;
mod keyset;
mod persistence;
mod purchase;
mod repair;
