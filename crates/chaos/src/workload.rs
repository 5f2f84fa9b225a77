//! Runs the schedule against the cluster: operations start at the scheduled rate (at most
//! `concurrency` in flight) while faults are injected on their own timeline; every request and its
//! answer go into the history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use super::access::Caller;
use super::cluster::ChaosCluster;
use super::history::{Call, Outcome, Record};
use super::schedule::{Op, OpKind, PRODUCTS, Schedule};

/// What a run did.
pub struct RunLog {
    /// Every request and answer.
    pub history: Vec<Record>,
    /// Faults injected, by name.
    pub faults: BTreeMap<&'static str, usize>,
    /// Faults whose injection itself failed (with why).
    pub fault_errors: Vec<String>,
}

struct Request<'a> {
    call: Call,
    /// Who sends it (which token).
    caller: Caller,
    method: Method,
    url: String,
    body: Option<Value>,
    key: Option<&'a str>,
    id: String,
    store: usize,
    product: &'a str,
    quantity: Option<i64>,
    /// The reservation acted on (commit, release).
    reservation: Option<String>,
}

async fn send(cluster: &ChaosCluster, started: Instant, request: Request<'_>) -> Record {
    let mut builder = cluster
        .request(request.caller, request.method, &request.url)
        .header("x-request-id", &request.id);
    if let Some(key) = request.key {
        builder = builder.header("idempotency-key", key);
    }
    if let Some(body) = &request.body {
        builder = builder.json(body);
    }
    let (outcome, body) = match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (Outcome::Answered(status), body)
        }
        Err(error) => (Outcome::Lost(error.to_string()), Value::Null),
    };
    Record {
        id: request.id,
        call: request.call,
        store: request.store,
        product: request.product.to_owned(),
        quantity: request.quantity,
        key: request.key.map(str::to_owned),
        outcome,
        seen_quantity: body["quantity"].as_i64(),
        purchase_id: body["purchaseId"].as_str().map(str::to_owned),
        reservation_id: body["reservationId"]
            .as_str()
            .map(str::to_owned)
            .or(request.reservation),
        transfer_id: body["transferId"].as_str().map(str::to_owned),
        at_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// Who makes `call` on store `store`'s behalf: its staff at the store, a salesperson for
/// Central's purchases and reservations, an administrator for transfers, a viewer for Central's
/// view.
fn caller_of(call: Call, store: usize) -> Caller {
    match call {
        Call::Create | Call::Set | Call::Local | Call::ReadStore => Caller::Store(store),
        Call::Remote | Call::Reserve | Call::Commit | Call::Release => Caller::Sales,
        Call::Transfer => Caller::Admin,
        Call::ReadCentral => Caller::Viewer,
    }
}

/// The request(s) one operation makes; `held` is the reservation a commit or release acts on
/// (none yet: no request).
fn requests<'a>(
    cluster: &ChaosCluster,
    schedule: &'a Schedule,
    op: &'a Op,
    held: Option<String>,
) -> Vec<Request<'a>> {
    let store_url = &cluster.store_urls[op.store - 1];
    let id = format!("op-{}-{}", schedule.seed, op.index);
    let p = op.product.as_str();
    let remote = |quantity: i64, key: Option<&'a str>, id: String| Request {
        call: Call::Remote,
        caller: Caller::Sales,
        method: Method::POST,
        url: format!(
            "{}/purchase/store-{}/{p}",
            cluster.central_at(op.index),
            op.store
        ),
        body: Some(json!({ "quantity": quantity })),
        key,
        id,
        store: op.store,
        product: p,
        quantity: Some(quantity),
        reservation: None,
    };
    let local = |quantity: i64, id: String| Request {
        call: Call::Local,
        caller: Caller::Store(op.store),
        method: Method::POST,
        url: format!("{store_url}/purchase/{p}"),
        body: Some(json!({ "quantity": quantity })),
        key: None,
        id,
        store: op.store,
        product: p,
        quantity: Some(quantity),
        reservation: None,
    };
    let plain =
        |call: Call, method: Method, url: String, body: Option<Value>, quantity: Option<i64>| {
            Request {
                call,
                caller: caller_of(call, op.store),
                method,
                url,
                body,
                key: None,
                id: id.clone(),
                store: op.store,
                product: p,
                quantity,
                reservation: None,
            }
        };
    match &op.kind {
        OpKind::Create => vec![plain(
            Call::Create,
            Method::POST,
            format!("{store_url}/inventory"),
            Some(json!({ "productId": p })),
            None,
        )],
        OpKind::Set(q) => vec![plain(
            Call::Set,
            Method::PUT,
            format!("{store_url}/inventory/{p}"),
            Some(json!({ "quantity": q })),
            Some(*q),
        )],
        OpKind::Local(q) => vec![local(*q, id.clone())],
        OpKind::Remote(q, key) => vec![remote(*q, key.as_deref(), id.clone())],
        OpKind::Retry { of } => match &schedule.ops[*of].kind {
            OpKind::Remote(q, key) => vec![remote(*q, key.as_deref(), id.clone())],
            _ => Vec::new(),
        },
        OpKind::Race(q) => vec![
            local(*q, format!("{id}-l")),
            remote(*q, None, format!("{id}-r")),
        ],
        OpKind::ReadStore => vec![plain(
            Call::ReadStore,
            Method::GET,
            format!("{store_url}/inventory/{p}"),
            None,
            None,
        )],
        OpKind::ReadCentral => vec![plain(
            Call::ReadCentral,
            Method::GET,
            format!(
                "{}/inventory/store-{}/{p}",
                cluster.central_at(op.index),
                op.store
            ),
            None,
            None,
        )],
        OpKind::Reserve(q, ttl) => vec![plain(
            Call::Reserve,
            Method::POST,
            format!("{}/reservations", cluster.central_at(op.index)),
            Some(json!({
                "storeId": format!("store-{}", op.store), "productId": p, "quantity": q, "ttl": ttl
            })),
            Some(*q),
        )],
        OpKind::Commit { .. } | OpKind::Release { .. } => {
            let Some(held) = held else {
                return Vec::new();
            };
            let (call, method, url) = if matches!(op.kind, OpKind::Commit { .. }) {
                (
                    Call::Commit,
                    Method::POST,
                    format!(
                        "{}/reservations/{held}/commit",
                        cluster.central_at(op.index)
                    ),
                )
            } else {
                (
                    Call::Release,
                    Method::DELETE,
                    format!("{}/reservations/{held}", cluster.central_at(op.index)),
                )
            };
            let mut request = plain(call, method, url, None, None);
            request.reservation = Some(held);
            vec![request]
        }
        OpKind::Transfer { to, quantity } => vec![plain(
            Call::Transfer,
            Method::POST,
            format!("{}/transfers", cluster.central_at(op.index)),
            Some(json!({
                "from": format!("store-{}", op.store), "to": format!("store-{to}"),
                "productId": p, "quantity": quantity
            })),
            Some(*quantity),
        )],
    }
}

/// Stock each store with every product (recorded like any request), so that the workload
/// mostly buys and sets rather than meeting 404s.
async fn stock_every_store(cluster: &ChaosCluster, started: Instant) -> Vec<Record> {
    let mut records = Vec::new();
    for store in 1..=cluster.store_urls.len() {
        let url = &cluster.store_urls[store - 1];
        for n in 0..PRODUCTS {
            let product = format!("p{n}");
            let create = Request {
                call: Call::Create,
                caller: Caller::Store(store),
                method: Method::POST,
                url: format!("{url}/inventory"),
                body: Some(json!({ "productId": product })),
                key: None,
                id: format!("setup-{store}-{n}-create"),
                store,
                product: &product,
                quantity: None,
                reservation: None,
            };
            records.push(send(cluster, started, create).await);
            let set = Request {
                call: Call::Set,
                caller: Caller::Store(store),
                method: Method::PUT,
                url: format!("{url}/inventory/{product}"),
                body: Some(json!({ "quantity": 30 })),
                key: None,
                id: format!("setup-{store}-{n}-set"),
                store,
                product: &product,
                quantity: Some(30),
                reservation: None,
            };
            records.push(send(cluster, started, set).await);
        }
    }
    records
}

/// Sends `ops` one after the other (outside the schedule: the self-healing phase), recording
/// them like the schedule's; `first_index` keeps their ids unique in the run.
pub async fn burst(
    cluster: &ChaosCluster,
    seed: u64,
    started: Instant,
    first_index: usize,
    ops: Vec<(usize, String, OpKind)>,
) -> Vec<Record> {
    let schedule = Schedule {
        seed,
        rate: 1,
        ops: Vec::new(),
        faults: Vec::new(),
    };
    let mut records = Vec::new();
    for (i, (store, product, kind)) in ops.into_iter().enumerate() {
        let op = Op {
            index: first_index + i,
            store,
            product,
            kind,
        };
        for request in requests(cluster, &schedule, &op, None) {
            records.push(send(cluster, started, request).await);
        }
    }
    records
}

/// Runs the schedule to its end.
pub async fn run(
    cluster: Arc<ChaosCluster>,
    schedule: Arc<Schedule>,
    concurrency: usize,
) -> RunLog {
    let setup = stock_every_store(&cluster, Instant::now()).await;
    let started = Instant::now();
    let history = Arc::new(Mutex::new(setup));
    // The reservation each reserve operation made, for the commits and releases that follow it.
    let held: Arc<Mutex<BTreeMap<usize, String>>> = Arc::default();
    let faults = {
        let (cluster, schedule) = (cluster.clone(), schedule.clone());
        tokio::spawn(async move {
            let mut counts = BTreeMap::new();
            let mut errors = Vec::new();
            for (at, fault) in &schedule.faults {
                tokio::time::sleep_until((started + *at).into()).await;
                eprintln!(
                    "  chaos: {:>6.1}s {:?}",
                    started.elapsed().as_secs_f64(),
                    fault
                );
                match cluster.inject(fault).await {
                    Ok(()) => *counts.entry(fault.name()).or_insert(0) += 1,
                    Err(error) => errors.push(format!("{fault:?}: {error:#}")),
                }
            }
            (counts, errors)
        })
    };
    let permits = Arc::new(Semaphore::new(concurrency));
    let period = Duration::from_secs_f64(1.0 / f64::from(schedule.rate.max(1)));
    let mut tasks = Vec::with_capacity(schedule.ops.len());
    for index in 0..schedule.ops.len() {
        tokio::time::sleep_until(
            (started + period * u32::try_from(index).unwrap_or(u32::MAX)).into(),
        )
        .await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (cluster, schedule, history) = (cluster.clone(), schedule.clone(), history.clone());
        let held = held.clone();
        tasks.push(tokio::spawn(async move {
            let op = &schedule.ops[index];
            let reservation = match op.kind {
                OpKind::Commit { of } | OpKind::Release { of } => {
                    held.lock().await.get(&of).cloned()
                }
                _ => None,
            };
            let mut requests = requests(&cluster, &schedule, op, reservation);
            // A race sends its two requests at the same moment; others send one.
            let records = match (requests.pop(), requests.pop()) {
                (Some(second), Some(first)) => {
                    let (a, b) = tokio::join!(
                        send(&cluster, started, first),
                        send(&cluster, started, second)
                    );
                    vec![a, b]
                }
                (Some(only), None) => vec![send(&cluster, started, only).await],
                _ => Vec::new(),
            };
            if let (OpKind::Reserve(..), Some(id)) = (
                &op.kind,
                records.first().and_then(|r| r.reservation_id.clone()),
            ) {
                held.lock().await.insert(index, id);
            }
            history.lock().await.extend(records);
            drop(permit);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let (faults, fault_errors) = faults.await.unwrap_or_default();
    let history = std::mem::take(&mut *history.lock().await);
    RunLog {
        history,
        faults,
        fault_errors,
    }
}
