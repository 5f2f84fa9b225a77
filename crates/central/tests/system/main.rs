//! The whole system in one process: Central and stores over a private real `redis-server` (or a
//! private three-master Redis Cluster, or the in-process broker), driven over HTTP.

mod api;
mod demo;
mod heal;
mod observability;
mod postgres;
mod race;
mod redis_cluster;
mod replicas;
mod reservations;
mod transfers;
