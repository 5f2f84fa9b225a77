//! The whole system in one process: Central and stores over a private real `redis-server` (or
//! the in-process broker), driven over HTTP.

mod api;
mod demo;
mod heal;
mod observability;
mod race;
mod reservations;
mod transfers;
