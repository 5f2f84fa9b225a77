//! The workload and fault schedule, generated from a seed: the same seed gives the same sequence
//! of operations (kinds, targets, amounts, keys) and the same faults at the same offsets. The
//! interleaving of concurrent requests is up to the machine.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Products each store may carry.
pub const PRODUCTS: usize = 8;

/// What one operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// `POST /inventory` at the store.
    Create,
    /// `PUT /inventory/{p}` at the store.
    Set(i64),
    /// `POST /purchase/{p}` at the store.
    Local(i64),
    /// `POST /purchase/{s}/{p}` at Central, with an idempotency key or not.
    Remote(i64, Option<String>),
    /// The same remote purchase again, with the key of operation `of`.
    Retry { of: usize },
    /// A local and a remote purchase of one item at the same moment.
    Race(i64),
    /// `GET /inventory/{p}` at the store.
    ReadStore,
    /// `GET /inventory/{s}/{p}` at Central.
    ReadCentral,
    /// `POST /reservations` at Central: hold units for a ttl (seconds).
    Reserve(i64, i64),
    /// `POST /reservations/{id}/commit` of the reservation made by operation `of`.
    Commit { of: usize },
    /// `DELETE /reservations/{id}` of the reservation made by operation `of`.
    Release { of: usize },
    /// `POST /transfers` at Central from the operation's store to store `to`.
    Transfer { to: usize, quantity: i64 },
}

/// One scheduled operation.
#[derive(Debug, Clone)]
pub struct Op {
    /// Position in the schedule.
    pub index: usize,
    /// Target store, 1-based.
    pub store: usize,
    /// Target product.
    pub product: String,
    /// What to do.
    pub kind: OpKind,
}

/// An injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 the broker, restart it after `down`.
    RedisCrash { down: Duration },
    /// kill -9 master `master` (0-based) of the Redis Cluster, restart it on its data after
    /// `down` (the scaled run's broker crash).
    MasterCrash { master: usize, down: Duration },
    /// kill -9 a store, restart it after `down`.
    StoreCrash { store: usize, down: Duration },
    /// kill -9 Central replica `replica` (1-based; the only one outside the scaled run),
    /// restart it after `down`.
    CentralCrash { replica: usize, down: Duration },
    /// `POST /disconnected`, then `/connected` after `span`.
    Disconnect { store: usize, span: Duration },
    /// Re-publish entries already delivered (events and commands of a store).
    Duplicates { store: usize },
    /// Re-publish a store's oldest events now (out of order).
    LateEvents { store: usize },
    /// Publish one undecodable entry to a store's events stream (once per run).
    Poison { store: usize },
}

impl Fault {
    /// Whether injecting it means writing to the broker (which may be restarting).
    pub fn through_broker(&self) -> bool {
        matches!(
            self,
            Fault::Duplicates { .. } | Fault::LateEvents { .. } | Fault::Poison { .. }
        )
    }

    /// A short name for the summary.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::RedisCrash { .. } => "kill -9 redis-server",
            Fault::MasterCrash { .. } => "kill -9 a Redis master",
            Fault::StoreCrash { .. } => "kill -9 a store",
            Fault::CentralCrash { .. } => "kill -9 Central",
            Fault::Disconnect { .. } => "disconnect/reconnect a store",
            Fault::Duplicates { .. } => "re-inject delivered entries",
            Fault::LateEvents { .. } => "deliver old events late",
            Fault::Poison { .. } => "undecodable entry",
        }
    }
}

/// What the faults can be aimed at: how many Central replicas, and the Redis Cluster's masters
/// (none: one `redis-server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Central replicas (1 outside the scaled run).
    pub centrals: usize,
    /// Masters of the Redis Cluster, or `None` for one Redis.
    pub masters: Option<usize>,
}

#[cfg(test)]
impl Shape {
    /// One Central on one Redis: the normal run.
    pub const SINGLE: Shape = Shape {
        centrals: 1,
        masters: None,
    };
}

/// The whole run, decided up front.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The seed it came from.
    pub seed: u64,
    /// Operations started per second.
    pub rate: u32,
    /// The operations, in start order.
    pub ops: Vec<Op>,
    /// Faults with their offsets from the start.
    pub faults: Vec<(Duration, Fault)>,
}

fn ms(rng: &mut StdRng, low: u64, high: u64) -> Duration {
    Duration::from_millis(rng.random_range(low..=high))
}

impl Schedule {
    /// The schedule for `seed`: `rate` operations a second for `duration` over `stores` stores,
    /// with faults every few seconds until 5 s before the end (so the end is quiet), aimed at
    /// the nodes of `shape`. The single shape draws exactly what it drew before replicas and
    /// masters existed, so an old seed replays the same run.
    pub fn generate(seed: u64, duration: Duration, stores: usize, rate: u32, shape: Shape) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let count = (duration.as_secs_f64() * f64::from(rate)) as usize;
        let mut ops: Vec<Op> = Vec::with_capacity(count);
        let mut keyed: Vec<usize> = Vec::new();
        let mut reserves: Vec<usize> = Vec::new();
        for index in 0..count {
            let store = rng.random_range(1..=stores);
            let product = format!("p{}", rng.random_range(0..PRODUCTS));
            let roll = rng.random_range(0..125);
            let kind = match roll {
                0..5 => OpKind::Create,
                5..20 => OpKind::Set(rng.random_range(0..=40)),
                20..48 => OpKind::Local(rng.random_range(1..=4)),
                48..78 => {
                    let key = rng.random_bool(0.5).then(|| format!("key-{seed}-{index}"));
                    if key.is_some() {
                        keyed.push(index);
                    }
                    OpKind::Remote(rng.random_range(1..=4), key)
                }
                78..84 if !keyed.is_empty() => OpKind::Retry {
                    of: keyed[rng.random_range(0..keyed.len())],
                },
                78..90 => OpKind::Race(rng.random_range(1..=3)),
                90..95 => OpKind::ReadStore,
                95..100 => OpKind::ReadCentral,
                108..113 if !reserves.is_empty() => OpKind::Commit {
                    of: reserves[rng.random_range(0..reserves.len())],
                },
                113..116 if !reserves.is_empty() => OpKind::Release {
                    of: reserves[rng.random_range(0..reserves.len())],
                },
                100..116 => {
                    reserves.push(index);
                    OpKind::Reserve(rng.random_range(1..=3), rng.random_range(1..=4))
                }
                _ if stores > 1 => {
                    let to = (store + rng.random_range(1..stores) - 1) % stores + 1;
                    OpKind::Transfer {
                        to,
                        quantity: rng.random_range(1..=3),
                    }
                }
                _ => OpKind::ReadCentral,
            };
            // A retry (or a commit or a release) goes to the same item as the operation it
            // follows.
            let (store, product) = match &kind {
                OpKind::Retry { of } | OpKind::Commit { of } | OpKind::Release { of } => {
                    (ops[*of].store, ops[*of].product.clone())
                }
                _ => (store, product),
            };
            ops.push(Op {
                index,
                store,
                product,
                kind,
            });
        }

        let mut faults = Vec::new();
        let fault_window = duration.saturating_sub(Duration::from_secs(5));
        let poison_at = ms(
            &mut rng,
            1_000,
            (fault_window.as_millis() as u64 / 2).max(1_000),
        );
        faults.push((
            poison_at,
            Fault::Poison {
                store: rng.random_range(1..=stores),
            },
        ));
        let mut at = ms(&mut rng, 1_000, 3_000);
        while at < fault_window {
            let store = rng.random_range(1..=stores);
            let fault = match rng.random_range(0..7) {
                0 => match shape.masters {
                    Some(masters) => Fault::MasterCrash {
                        master: rng.random_range(0..masters.max(1)),
                        down: ms(&mut rng, 100, 1_000),
                    },
                    None => Fault::RedisCrash {
                        down: ms(&mut rng, 100, 1_000),
                    },
                },
                1 => Fault::StoreCrash {
                    store,
                    down: ms(&mut rng, 100, 1_500),
                },
                2 => Fault::CentralCrash {
                    replica: match shape.centrals {
                        0 | 1 => 1,
                        centrals => rng.random_range(1..=centrals),
                    },
                    down: ms(&mut rng, 100, 1_500),
                },
                3 => Fault::Disconnect {
                    store,
                    span: ms(&mut rng, 300, 2_500),
                },
                4 => Fault::Duplicates { store },
                5 => Fault::LateEvents { store },
                _ => Fault::Duplicates { store },
            };
            faults.push((at, fault));
            at += ms(&mut rng, 1_500, 4_000);
        }
        faults.sort_by_key(|(at, _)| *at);
        Self {
            seed,
            rate,
            ops,
            faults,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = Schedule::generate(7, Duration::from_secs(30), 3, 40, Shape::SINGLE);
        let b = Schedule::generate(7, Duration::from_secs(30), 3, 40, Shape::SINGLE);
        assert_eq!(a.ops.len(), b.ops.len());
        assert!(
            a.ops
                .iter()
                .zip(&b.ops)
                .all(|(x, y)| x.kind == y.kind && x.store == y.store && x.product == y.product)
        );
        assert_eq!(a.faults, b.faults);
        let c = Schedule::generate(8, Duration::from_secs(30), 3, 40, Shape::SINGLE);
        assert!(a.ops.iter().zip(&c.ops).any(|(x, y)| x.kind != y.kind));
    }

    #[test]
    fn every_run_has_one_poison_and_ends_quietly() {
        let s = Schedule::generate(1, Duration::from_secs(60), 3, 40, Shape::SINGLE);
        let poisons = s
            .faults
            .iter()
            .filter(|(_, f)| matches!(f, Fault::Poison { .. }))
            .count();
        assert_eq!(poisons, 1);
        assert!(
            s.faults
                .iter()
                .all(|(at, _)| *at <= Duration::from_secs(55))
        );
        assert!(s.faults.len() > 10);
    }

    #[test]
    fn a_scaled_schedule_aims_at_masters_and_replicas_and_never_at_one_redis() {
        let shape = Shape {
            centrals: 2,
            masters: Some(3),
        };
        let s = Schedule::generate(20_261_202, Duration::from_secs(120), 3, 40, shape);
        assert!(
            !s.faults
                .iter()
                .any(|(_, f)| matches!(f, Fault::RedisCrash { .. }))
        );
        let masters: std::collections::BTreeSet<usize> = s
            .faults
            .iter()
            .filter_map(|(_, f)| match f {
                Fault::MasterCrash { master, .. } => Some(*master),
                _ => None,
            })
            .collect();
        assert!(
            !masters.is_empty() && masters.iter().all(|m| *m < 3),
            "{masters:?}"
        );
        let replicas: std::collections::BTreeSet<usize> = s
            .faults
            .iter()
            .filter_map(|(_, f)| match f {
                Fault::CentralCrash { replica, .. } => Some(*replica),
                _ => None,
            })
            .collect();
        assert!(replicas.iter().all(|r| (1..=2).contains(r)), "{replicas:?}");
    }
}
