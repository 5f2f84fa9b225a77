//! The checker: given the recorded history and what was observed once the cluster was quiet,
//! decides each invariant of DESIGN.md §3. It is a pure function, so it is tested with fabricated
//! histories that break each invariant.
//!
//! The store's ledger is the serial order of what happened to an item: every movement carries the
//! correlation id of the request that caused it (and remote sales their purchase id), so each
//! answered request can be matched to exactly the movements it caused.

use std::collections::BTreeMap;
use std::time::Duration;

use super::history::{Call, Outcome, Record};
use super::observe::{MovementView, Observed};

/// One invariant's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The invariant.
    pub name: &'static str,
    /// What broke it (empty when it holds).
    pub violations: Vec<String>,
}

impl Verdict {
    /// Whether the invariant holds.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Every verdict.
#[derive(Debug, Clone)]
pub struct Verdicts(pub Vec<Verdict>);

impl Verdicts {
    /// Whether every invariant holds.
    pub fn all_passed(&self) -> bool {
        self.0.iter().all(Verdict::passed)
    }
}

/// Movements of one store, indexed for matching.
struct Ledger<'a> {
    by_correlation: BTreeMap<&'a str, Vec<(&'a str, &'a MovementView)>>,
    by_purchase: BTreeMap<&'a str, Vec<(&'a str, &'a MovementView)>>,
}

fn ledgers(observed: &Observed) -> Vec<Ledger<'_>> {
    observed
        .stores
        .iter()
        .map(|truth| {
            let mut ledger = Ledger {
                by_correlation: BTreeMap::new(),
                by_purchase: BTreeMap::new(),
            };
            for (product, moves) in &truth.ledgers {
                for m in moves {
                    if let Some(c) = &m.correlation_id {
                        ledger
                            .by_correlation
                            .entry(c)
                            .or_default()
                            .push((product, m));
                    }
                    if let Some(p) = &m.purchase_id {
                        ledger.by_purchase.entry(p).or_default().push((product, m));
                    }
                }
            }
            ledger
        })
        .collect()
}

/// Decides every invariant.
pub fn check(
    history: &[Record],
    observed: &Observed,
    poison: &str,
    convergence_limit: Duration,
) -> Verdicts {
    let ledgers = ledgers(observed);
    Verdicts(vec![
        never_below_zero(history, observed),
        ledgers_add_up(observed),
        changes_applied_exactly_once(history, observed, &ledgers),
        no_unexplained_movement(history, observed),
        pending_purchases_resolved(history, observed),
        idempotency_keys_buy_once(history, &ledgers),
        final_quantity_is_last_set_minus_confirmed(history, observed),
        central_converged(observed, convergence_limit),
        healed_after_each_loss(observed, HEAL_LIMIT),
        reserved_units_follow_open_reservations(observed),
        reservations_end_exactly_once(history, observed),
        transfers_conserve_units_and_end_once(observed),
        central_equals_stores_once_quiet(observed),
        nothing_lost(observed, poison),
    ])
}

fn never_below_zero(history: &[Record], observed: &Observed) -> Verdict {
    let mut v = Vec::new();
    for r in history {
        if let Some(q) = r.seen_quantity.filter(|q| *q < 0) {
            v.push(format!(
                "{} ({:?} store-{} {}) answered quantity {q}",
                r.id, r.call, r.store, r.product
            ));
        }
    }
    for (i, truth) in observed.stores.iter().enumerate() {
        for (p, item) in &truth.items {
            if item.quantity < 0 {
                v.push(format!("store-{}/{p} holds {}", i + 1, item.quantity));
            }
        }
        for (p, moves) in &truth.ledgers {
            for m in moves.iter().filter(|m| m.quantity < 0) {
                v.push(format!(
                    "store-{}/{p} ledger v{} at {}",
                    i + 1,
                    m.version,
                    m.quantity
                ));
            }
        }
    }
    for ((s, p), item) in &observed.central {
        if item.quantity < 0 {
            v.push(format!("Central shows store-{s}/{p} at {}", item.quantity));
        }
    }
    Verdict {
        name: "no stock ever observed below zero",
        violations: v,
    }
}

fn ledgers_add_up(observed: &Observed) -> Verdict {
    let mut v = Vec::new();
    for (i, truth) in observed.stores.iter().enumerate() {
        let store = i + 1;
        for (p, moves) in &truth.ledgers {
            let mut previous: Option<&MovementView> = None;
            for (n, m) in moves.iter().enumerate() {
                if m.version != n as i64 + 1 {
                    v.push(format!(
                        "store-{store}/{p}: movement {} has version {}",
                        n + 1,
                        m.version
                    ));
                }
                let expected = previous.map_or(0, |prev| prev.quantity) + m.delta;
                if m.quantity != expected {
                    v.push(format!(
                        "store-{store}/{p} v{}: {} {:+} gives {}, not {expected}",
                        m.version,
                        previous.map_or(0, |x| x.quantity),
                        m.delta,
                        m.quantity
                    ));
                }
                previous = Some(m);
            }
            let last = moves.last().map(|m| (m.quantity, m.version));
            let item = truth.items.get(p).map(|i| (i.quantity, i.version));
            if last != item {
                v.push(format!(
                    "store-{store}/{p}: item {item:?} but ledger ends at {last:?}"
                ));
            }
        }
    }
    Verdict {
        name: "every store ledger adds up to its item",
        violations: v,
    }
}

fn changes_applied_exactly_once(
    history: &[Record],
    observed: &Observed,
    ledgers: &[Ledger<'_>],
) -> Verdict {
    let mut v = Vec::new();
    for r in history {
        let Some(ledger) = ledgers.get(r.store - 1) else {
            continue;
        };
        let by_id: Vec<&MovementView> = ledger
            .by_correlation
            .get(r.id.as_str())
            .map(|ms| ms.iter().map(|(_, m)| *m).collect())
            .unwrap_or_default();
        let kind = match r.call {
            Call::Create => "created",
            Call::Set => "set",
            Call::Local => "local_sale",
            Call::Remote => "remote_sale",
            Call::Reserve => "reserve",
            Call::Commit => "reserved_sale",
            Call::Release => "release",
            Call::Transfer => "transfer_out",
            Call::ReadStore | Call::ReadCentral => {
                if !by_id.is_empty() {
                    v.push(format!(
                        "{}: a read caused {} movement(s)",
                        r.id,
                        by_id.len()
                    ));
                }
                continue;
            }
        };
        let caused = by_id.iter().filter(|m| m.kind == kind).count();
        let success = match r.call {
            Call::Create | Call::Reserve | Call::Transfer => 201,
            Call::Set => 204,
            _ => 200,
        };
        // A remote purchase's movement may carry the first request's id (an idempotent retry),
        // so an answered one is matched by its purchase id.
        let remote_confirmed =
            |id: &str| -> usize { ledger.by_purchase.get(id).map_or(0, Vec::len) };
        match (&r.outcome, r.call) {
            (Outcome::Answered(200), Call::Remote) => match r.purchase_id.as_deref() {
                Some(id) => {
                    let n = remote_confirmed(id);
                    if n != 1 {
                        v.push(format!(
                            "{}: remote purchase {id} answered 200 but applied {n} times",
                            r.id
                        ));
                    }
                }
                None => v.push(format!(
                    "{}: remote purchase answered 200 without a purchase id",
                    r.id
                )),
            },
            (Outcome::Answered(202), Call::Remote) => {
                if let Some(id) = r.purchase_id.as_deref() {
                    let n = remote_confirmed(id);
                    let status = observed.purchases.get(id).map(|(s, _)| s.as_str());
                    let want = usize::from(status == Some("CONFIRMED"));
                    if n != want {
                        v.push(format!(
                            "{}: purchase {id} resolved {status:?} but applied {n} times",
                            r.id
                        ));
                    }
                }
            }
            (Outcome::Answered(s), _) if *s == success => {
                if caused != 1 {
                    v.push(format!(
                        "{}: {:?} answered {s} but caused {caused} movements",
                        r.id, r.call
                    ));
                }
                let matched = by_id.iter().find(|m| m.kind == kind);
                // A set is a shelf count: it sets on hand (available + reserved).
                if let (Call::Set, Some(m), Some(q)) = (r.call, matched, r.quantity)
                    && m.quantity + m.reserved != q
                {
                    v.push(format!(
                        "{}: set to {q} recorded as {} on hand",
                        r.id,
                        m.quantity + m.reserved
                    ));
                }
                if let (Call::Local, Some(m), Some(q)) = (r.call, matched, r.quantity) {
                    if m.delta != -q {
                        v.push(format!("{}: bought {q}, ledger took {}", r.id, -m.delta));
                    }
                    if r.seen_quantity != Some(m.quantity) {
                        v.push(format!(
                            "{}: answered {:?} left, ledger says {}",
                            r.id, r.seen_quantity, m.quantity
                        ));
                    }
                }
            }
            (Outcome::Answered(s), _) if (400..500).contains(s) || *s == 503 => {
                if caused != 0 {
                    v.push(format!(
                        "{}: {:?} answered {s} yet caused {caused} movement(s)",
                        r.id, r.call
                    ));
                }
            }
            // No answer, or a 500: the effect is unknown, but never twice.
            _ => {
                if caused > 1 {
                    v.push(format!(
                        "{}: unanswered {:?} caused {caused} movements",
                        r.id, r.call
                    ));
                }
            }
        }
    }
    Verdict {
        name: "every answered change applied exactly once, every refusal not at all",
        violations: v,
    }
}

fn no_unexplained_movement(history: &[Record], observed: &Observed) -> Verdict {
    let ids: std::collections::BTreeSet<&str> = history.iter().map(|r| r.id.as_str()).collect();
    let purchases: std::collections::BTreeSet<&str> = history
        .iter()
        .filter_map(|r| r.purchase_id.as_deref())
        .collect();
    let mut reservations: std::collections::BTreeSet<&str> = history
        .iter()
        .filter_map(|r| r.reservation_id.as_deref())
        .collect();
    // A hold made by a request of the run whose answer was lost (Central killed while it
    // waited) names its reservation only in the ledger.
    reservations.extend(
        observed
            .stores
            .iter()
            .flat_map(|truth| truth.ledgers.values().flatten())
            .filter(|m| {
                m.kind == "reserve" && m.correlation_id.as_deref().is_some_and(|c| ids.contains(c))
            })
            .filter_map(|m| m.reservation_id.as_deref()),
    );
    let mut v = Vec::new();
    for (i, truth) in observed.stores.iter().enumerate() {
        for (p, moves) in &truth.ledgers {
            for m in moves {
                // An expiry is the store's clock acting on a reservation of the run.
                let explained = m.correlation_id.as_deref().is_some_and(|c| ids.contains(c))
                    || m.purchase_id
                        .as_deref()
                        .is_some_and(|id| purchases.contains(id))
                    || (m.kind == "expire"
                        && m.reservation_id
                            .as_deref()
                            .is_some_and(|id| reservations.contains(id)));
                if !explained {
                    v.push(format!(
                        "store-{}/{p} v{}: {} {:+} caused by no request of the run",
                        i + 1,
                        m.version,
                        m.kind,
                        m.delta
                    ));
                }
            }
        }
    }
    Verdict {
        name: "no movement without a request",
        violations: v,
    }
}

fn pending_purchases_resolved(history: &[Record], observed: &Observed) -> Verdict {
    let mut v = Vec::new();
    // Reservations and transfers answered 202 are judged by their own invariants.
    for r in history
        .iter()
        .filter(|r| r.call == Call::Remote && r.status() == Some(202))
    {
        let id = r.purchase_id.as_deref().unwrap_or("?");
        match observed.purchases.get(id).map(|(s, _)| s.as_str()) {
            Some("CONFIRMED" | "REJECTED") => {}
            other => v.push(format!("{}: 202 purchase {id} ended {other:?}", r.id)),
        }
    }
    Verdict {
        name: "every 202 resolved to CONFIRMED or REJECTED",
        violations: v,
    }
}

fn idempotency_keys_buy_once(history: &[Record], ledgers: &[Ledger<'_>]) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in history {
        if let Some(key) = r.key.as_deref() {
            by_key.entry(key).or_default().push(r);
        }
    }
    let mut v = Vec::new();
    for (key, records) in by_key {
        let ids: std::collections::BTreeSet<&str> = records
            .iter()
            .filter_map(|r| r.purchase_id.as_deref())
            .collect();
        if ids.len() > 1 {
            v.push(format!(
                "key {key}: {} different purchases {ids:?}",
                ids.len()
            ));
        }
        let ok = records.iter().any(|r| r.status() == Some(200));
        let refused = records.iter().any(|r| r.status() == Some(409));
        if ok && refused {
            v.push(format!("key {key}: answered both 200 and 409"));
        }
        for id in ids {
            let store = records[0].store;
            let n = ledgers
                .get(store - 1)
                .and_then(|l| l.by_purchase.get(id))
                .map_or(0, Vec::len);
            if n > 1 {
                v.push(format!("key {key}: purchase {id} applied {n} times"));
            }
        }
    }
    Verdict {
        name: "a retried Idempotency-Key buys once",
        violations: v,
    }
}

fn final_quantity_is_last_set_minus_confirmed(history: &[Record], observed: &Observed) -> Verdict {
    // Purchases the history knows to be confirmed: answered 200 (either scope), or resolved
    // CONFIRMED after a 202.
    let mut confirmed: BTreeMap<&str, i64> = BTreeMap::new();
    for r in history {
        let q = r.quantity.unwrap_or(0);
        match (r.call, r.status()) {
            (Call::Local, Some(200)) => {
                confirmed.insert(r.id.as_str(), q);
            }
            (Call::Remote, Some(200 | 202)) => {
                if let Some(id) = r.purchase_id.as_deref()
                    && observed
                        .purchases
                        .get(id)
                        .is_some_and(|(s, _)| s == "CONFIRMED")
                {
                    confirmed.insert(id, q);
                }
            }
            _ => {}
        }
    }
    let mut v = Vec::new();
    for (i, truth) in observed.stores.iter().enumerate() {
        for (p, moves) in &truth.ledgers {
            let last_set = moves
                .iter()
                .rposition(|m| m.kind == "set" || m.kind == "created");
            let Some(at) = last_set else { continue };
            let base = moves[at].quantity;
            let mut taken = 0;
            let mut counted = std::collections::BTreeSet::new();
            for m in &moves[at + 1..] {
                let key = m
                    .purchase_id
                    .as_deref()
                    .or(m.correlation_id.as_deref())
                    .unwrap_or("");
                match confirmed.get(key) {
                    // Each confirmed purchase counts once, however often the ledger shows it.
                    Some(q) => {
                        if counted.insert(key) {
                            taken += q;
                        }
                    }
                    // A sale the client never saw confirmed (its answer was lost): it still
                    // left the shelf; count what the ledger says.
                    None => taken -= m.delta,
                }
            }
            let expected = base - taken;
            let actual = truth.items.get(p).map_or(0, |i| i.quantity);
            if actual != expected {
                v.push(format!("store-{}/{p}: last set {base}, confirmed after it {taken}, so {expected}; store holds {actual}", i + 1));
            }
        }
    }
    Verdict {
        name: "each item = its last set − the purchases confirmed after it",
        violations: v,
    }
}

fn central_converged(observed: &Observed, limit: Duration) -> Verdict {
    let v = match &observed.convergence {
        Ok(took) if *took <= limit => Vec::new(),
        Ok(took) => vec![format!(
            "Central equalled the stores only after {took:?} (limit {limit:?})"
        )],
        Err(diff) => vec![format!("Central never equalled the stores: {diff}")],
    };
    Verdict {
        name: "Central's view equals every store's truth within 2 s of quiet",
        violations: v,
    }
}

/// How long Central may take to equal the stores again after a loss of the self-healing phase:
/// the cluster beats every 100 ms with a 1 s grace, so this leaves room for a loaded machine.
const HEAL_LIMIT: Duration = Duration::from_secs(15);

fn healed_after_each_loss(observed: &Observed, limit: Duration) -> Verdict {
    let v = observed
        .healed
        .iter()
        .filter_map(|(name, took)| match took {
            Ok(took) if *took <= limit => None,
            Ok(took) => Some(format!(
                "{name}: healed only after {took:?} (limit {limit:?})"
            )),
            Err(diff) => Some(format!("{name}: never healed: {diff}")),
        })
        .collect();
    Verdict {
        name: "Central equals every store again within 15 s of each broker or database loss",
        violations: v,
    }
}

/// Replays each ledger's reservation movements: the reserved count after every line must equal
/// the units of the reservations open at that point, so no other movement (a sale, a set, an
/// adjustment, a transfer) ever took a reserved unit; and each item ends with the reserved count
/// its ledger gives (0 once every reservation has ended).
fn reserved_units_follow_open_reservations(observed: &Observed) -> Verdict {
    let mut v = Vec::new();
    for (i, truth) in observed.stores.iter().enumerate() {
        let store = i + 1;
        for (p, moves) in &truth.ledgers {
            let mut open: BTreeMap<&str, i64> = BTreeMap::new();
            for m in moves {
                let id = m.reservation_id.as_deref().unwrap_or("");
                let broken = match m.kind.as_str() {
                    "reserve" => open.insert(id, -m.delta).is_some(),
                    "reserved_sale" | "release" | "expire" => open.remove(id).is_none(),
                    _ => false,
                };
                if broken {
                    v.push(format!(
                        "store-{store}/{p} v{}: {} of reservation {id}, which is not open (or held twice)",
                        m.version, m.kind
                    ));
                }
                let held: i64 = open.values().sum();
                if m.reserved != held || m.quantity < 0 {
                    v.push(format!(
                        "store-{store}/{p} v{} ({}): reserved {}, open reservations hold {held}, available {}",
                        m.version, m.kind, m.reserved, m.quantity
                    ));
                }
            }
            let held: i64 = open.values().sum();
            let item = truth.items.get(p).map_or(0, |i| i.reserved);
            if item != held {
                v.push(format!(
                    "store-{store}/{p}: item reserves {item}, its ledger's open reservations {held}"
                ));
            }
            if !open.is_empty() {
                v.push(format!(
                    "store-{store}/{p}: reservations still open once quiet: {:?}",
                    open.keys().collect::<Vec<_>>()
                ));
            }
        }
    }
    Verdict {
        name: "reserved units are only ever taken by their reservation (reserved = open reservations)",
        violations: v,
    }
}

/// Each reservation of the run ends exactly once, as Central says, and each answered commit or
/// release is the end the ledger shows.
fn reservations_end_exactly_once(history: &[Record], observed: &Observed) -> Verdict {
    let mut holds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ends: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for truth in &observed.stores {
        for m in truth.ledgers.values().flatten() {
            let Some(id) = m.reservation_id.as_deref() else {
                continue;
            };
            match m.kind.as_str() {
                "reserve" => *holds.entry(id).or_default() += 1,
                "reserved_sale" | "release" | "expire" => {
                    ends.entry(id).or_default().push(m.kind.as_str());
                }
                _ => {}
            }
        }
    }
    let mut v = Vec::new();
    for (id, status) in &observed.reservations {
        let held = holds.get(id.as_str()).copied().unwrap_or(0);
        let ended = ends.get(id.as_str()).cloned().unwrap_or_default();
        let expected_end = match status.as_str() {
            "COMMITTED" => Some("reserved_sale"),
            "RELEASED" => Some("release"),
            "EXPIRED" => Some("expire"),
            _ => None,
        };
        match (status.as_str(), expected_end) {
            ("REJECTED", _) if held != 0 || !ended.is_empty() => v.push(format!(
                "reservation {id}: REJECTED at Central but held {held} times at the store"
            )),
            ("REJECTED", _) => {}
            (_, Some(end)) if held != 1 || ended != [end] => v.push(format!(
                "reservation {id}: {status} at Central; the store held it {held} times and ended it {ended:?}"
            )),
            (_, Some(_)) => {}
            _ => v.push(format!("reservation {id}: never ended ({status})")),
        }
    }
    for r in history {
        let Some(id) = r.reservation_id.as_deref() else {
            continue;
        };
        let ended = ends.get(id).cloned().unwrap_or_default();
        let want = match (r.call, r.status()) {
            (Call::Commit, Some(200)) => "reserved_sale",
            (Call::Release, Some(200)) => "release",
            _ => continue,
        };
        if ended != [want] {
            v.push(format!(
                "{}: {:?} answered 200 but the store ended {id} {ended:?}",
                r.id, r.call
            ));
        }
    }
    Verdict {
        name: "each reservation ends exactly once: committed, released or expired",
        violations: v,
    }
}

/// Each transfer ends in one terminal state with its units moved once: received (out at the
/// sender, in at the receiver), rejected (nothing moved) or cancelled (nothing moved, or out and
/// back in at the sender); and per product, what left shelves by transfers equals what arrived
/// plus what Central shows in transit (nothing, once quiet).
fn transfers_conserve_units_and_end_once(observed: &Observed) -> Verdict {
    // (transfer, store) → units out, in, and returned in.
    let mut moved: BTreeMap<(&str, usize), Moved> = BTreeMap::new();
    let mut balance: BTreeMap<&str, i64> = BTreeMap::new();
    for (i, truth) in observed.stores.iter().enumerate() {
        for (p, moves) in &truth.ledgers {
            for m in moves {
                let Some(id) = m.transfer_id.as_deref() else {
                    continue;
                };
                let entry = moved.entry((id, i + 1)).or_default();
                match (m.kind.as_str(), m.reason.as_deref()) {
                    ("transfer_out", _) => {
                        entry.0.push(-m.delta);
                        *balance.entry(p).or_default() += -m.delta;
                    }
                    ("transfer_in", Some("returned")) => {
                        entry.2.push(m.delta);
                        *balance.entry(p).or_default() -= m.delta;
                    }
                    ("transfer_in", _) => {
                        entry.1.push(m.delta);
                        *balance.entry(p).or_default() -= m.delta;
                    }
                    _ => {}
                }
            }
        }
    }
    let mut v = Vec::new();
    let empty = (Vec::new(), Vec::new(), Vec::new());
    for (id, t) in &observed.transfers {
        let at_from = moved.get(&(id.as_str(), t.from)).unwrap_or(&empty);
        let at_to = moved.get(&(id.as_str(), t.to)).unwrap_or(&empty);
        let q = vec![t.quantity];
        let ok = match t.status.as_str() {
            "RECEIVED" => at_from.0 == q && at_to.1 == q && at_from.2.is_empty(),
            "REJECTED" => at_from.0.is_empty() && at_to.1.is_empty(),
            "CANCELLED" => {
                at_to.1.is_empty()
                    && ((at_from.0.is_empty() && at_from.2.is_empty())
                        || (at_from.0 == q && at_from.2 == q))
            }
            _ => false,
        };
        if !ok {
            v.push(format!(
                "transfer {id} ({} store-{}→store-{} {}×{}): out {:?}, in {:?}, returned {:?}",
                t.status, t.from, t.to, t.product, t.quantity, at_from.0, at_to.1, at_from.2
            ));
        }
    }
    for (id, store) in moved.keys() {
        if !observed.transfers.contains_key(*id) {
            v.push(format!(
                "store-{store} moved units for transfer {id}, unknown to Central"
            ));
        }
    }
    for (p, units) in &balance {
        let shown = observed.in_transit.get(*p).copied().unwrap_or(0);
        if *units != shown {
            v.push(format!(
                "{p}: ledgers leave {units} units between shelves, Central shows {shown} in transit"
            ));
        }
    }
    Verdict {
        name: "transfers conserve units and each ends once (received, rejected or cancelled)",
        violations: v,
    }
}

/// Units a store moved for one transfer: out, in, and returned in.
type Moved = (Vec<i64>, Vec<i64>, Vec<i64>);

/// Once quiet, Central's view equals every store's items, available and reserved.
fn central_equals_stores_once_quiet(observed: &Observed) -> Verdict {
    let mut v = Vec::new();
    for (i, truth) in observed.stores.iter().enumerate() {
        for (p, item) in &truth.items {
            match observed.central.get(&(i + 1, p.clone())) {
                Some(seen) if seen == item => {}
                other => v.push(format!(
                    "store-{}/{p}: store {item:?}, Central {other:?}",
                    i + 1
                )),
            }
        }
    }
    Verdict {
        name: "once quiet, Central shows every item's available and reserved units as its store",
        violations: v,
    }
}

fn nothing_lost(observed: &Observed, poison: &str) -> Verdict {
    let mut v = Vec::new();
    for (i, truth) in observed.stores.iter().enumerate() {
        if truth.outbox_pending != 0 {
            v.push(format!(
                "store-{} outbox still holds {} unpublished rows",
                i + 1,
                truth.outbox_pending
            ));
        }
    }
    if observed.central_outbox_pending != 0 {
        v.push(format!(
            "Central's outbox still holds {} rows",
            observed.central_outbox_pending
        ));
    }
    for g in &observed.groups {
        if g.pending != 0 || g.lag.unwrap_or(0) != 0 {
            v.push(format!(
                "{} group {}: {} pending, lag {:?}",
                g.stream, g.group, g.pending, g.lag
            ));
        }
    }
    let poisons = observed
        .dead_letters
        .iter()
        .filter(|(_, d)| d == poison)
        .count();
    if poisons != 1 {
        v.push(format!(
            "the injected poison entry is dead-lettered {poisons} times, not once"
        ));
    }
    for (stream, data) in observed.dead_letters.iter().filter(|(_, d)| d != poison) {
        v.push(format!(
            "{stream}: unexpected dead letter {}",
            data.chars().take(160).collect::<String>()
        ));
    }
    Verdict {
        name: "nothing lost: outboxes empty, groups drained, only the poison dead-lettered",
        violations: v,
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::{Call, Outcome, Record};
    use super::super::observe::{GroupView, ItemView, MovementView, Observed, StoreTruth};
    use super::*;

    const POISON: &str = "poison";

    fn record(
        id: &str,
        call: Call,
        status: u16,
        quantity: Option<i64>,
        seen: Option<i64>,
        purchase: Option<&str>,
    ) -> Record {
        Record {
            id: id.into(),
            call,
            store: 1,
            product: "p".into(),
            quantity,
            key: None,
            outcome: Outcome::Answered(status),
            seen_quantity: seen,
            purchase_id: purchase.map(str::to_owned),
            reservation_id: None,
            transfer_id: None,
            at_ms: 0,
        }
    }

    fn movement(
        kind: &str,
        delta: i64,
        quantity: i64,
        version: i64,
        corr: &str,
        purchase: Option<&str>,
    ) -> MovementView {
        MovementView {
            kind: kind.into(),
            delta,
            quantity,
            reserved: 0,
            reason: None,
            reservation_id: None,
            transfer_id: None,
            version,
            correlation_id: Some(corr.into()),
            purchase_id: purchase.map(str::to_owned),
        }
    }

    /// A correct run: create, set 10, local buy 2, remote buy 3, a refused remote buy.
    fn good() -> (Vec<Record>, Observed) {
        let history = vec![
            record("c", Call::Create, 201, None, Some(0), None),
            record("s", Call::Set, 204, Some(10), None, None),
            record("l", Call::Local, 200, Some(2), Some(8), None),
            record("r", Call::Remote, 200, Some(3), Some(5), Some("P1")),
            record("x", Call::Remote, 409, Some(50), None, None),
        ];
        let moves = vec![
            movement("created", 0, 0, 1, "c", None),
            movement("set", 10, 10, 2, "s", None),
            movement("local_sale", -2, 8, 3, "l", None),
            movement("remote_sale", -3, 5, 4, "r", Some("P1")),
        ];
        let item = ItemView {
            quantity: 5,
            reserved: 0,
            version: 4,
        };
        let observed = Observed {
            stores: vec![StoreTruth {
                items: [("p".to_owned(), item)].into(),
                ledgers: [("p".to_owned(), moves)].into(),
                outbox_pending: 0,
            }],
            central: [((1, "p".to_owned()), item)].into(),
            central_outbox_pending: 0,
            purchases: [("P1".to_owned(), ("CONFIRMED".to_owned(), None))].into(),
            reservations: BTreeMap::new(),
            transfers: BTreeMap::new(),
            in_transit: BTreeMap::new(),
            groups: vec![GroupView {
                stream: "s".into(),
                group: "g".into(),
                pending: 0,
                lag: Some(0),
            }],
            dead_letters: vec![("s".into(), POISON.into())],
            convergence: Ok(Duration::from_millis(12)),
            healed: vec![("wiped", Ok(Duration::from_millis(900)))],
        };
        (history, observed)
    }

    fn failing(history: &[Record], observed: &Observed) -> Vec<&'static str> {
        check(history, observed, POISON, Duration::from_secs(2))
            .0
            .into_iter()
            .filter(|v| !v.passed())
            .map(|v| v.name)
            .collect()
    }

    #[test]
    fn a_correct_history_passes_every_invariant() {
        let (history, observed) = good();
        assert!(
            failing(&history, &observed).is_empty(),
            "{:?}",
            failing(&history, &observed)
        );
    }

    #[test]
    fn a_confirmed_purchase_applied_twice_is_caught() {
        let (history, mut observed) = good();
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        ledger.push(movement("remote_sale", -3, 2, 5, "r", Some("P1")));
        observed.stores[0].items.insert(
            "p".into(),
            ItemView {
                quantity: 2,
                reserved: 0,
                version: 5,
            },
        );
        observed.central.insert(
            (1, "p".into()),
            ItemView {
                quantity: 2,
                reserved: 0,
                version: 5,
            },
        );
        let failed = failing(&history, &observed);
        assert!(
            failed
                .contains(&"every answered change applied exactly once, every refusal not at all"),
            "{failed:?}"
        );
        assert!(
            failed.contains(&"each item = its last set − the purchases confirmed after it"),
            "{failed:?}"
        );
    }

    #[test]
    fn a_confirmed_purchase_that_was_lost_is_caught() {
        let (history, mut observed) = good();
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        ledger.pop();
        observed.stores[0].items.insert(
            "p".into(),
            ItemView {
                quantity: 8,
                reserved: 0,
                version: 3,
            },
        );
        observed.central.insert(
            (1, "p".into()),
            ItemView {
                quantity: 8,
                reserved: 0,
                version: 3,
            },
        );
        let failed = failing(&history, &observed);
        assert!(
            failed
                .contains(&"every answered change applied exactly once, every refusal not at all"),
            "{failed:?}"
        );
    }

    #[test]
    fn a_refused_purchase_that_changed_stock_is_caught() {
        let (history, mut observed) = good();
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        ledger.push(movement("remote_sale", -5, 0, 5, "x", Some("P9")));
        observed.stores[0].items.insert(
            "p".into(),
            ItemView {
                quantity: 0,
                reserved: 0,
                version: 5,
            },
        );
        observed.central.insert(
            (1, "p".into()),
            ItemView {
                quantity: 0,
                reserved: 0,
                version: 5,
            },
        );
        let failed = failing(&history, &observed);
        assert!(
            failed
                .contains(&"every answered change applied exactly once, every refusal not at all"),
            "{failed:?}"
        );
    }

    #[test]
    fn stock_below_zero_and_a_broken_ledger_are_caught() {
        let (mut history, mut observed) = good();
        history.push(record("l2", Call::Local, 200, Some(9), Some(-4), None));
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        ledger.push(movement("local_sale", -9, -4, 5, "l2", None));
        observed.stores[0].items.insert(
            "p".into(),
            ItemView {
                quantity: -4,
                reserved: 0,
                version: 5,
            },
        );
        let failed = failing(&history, &observed);
        assert!(
            failed.contains(&"no stock ever observed below zero"),
            "{failed:?}"
        );
    }

    #[test]
    fn a_phantom_sale_is_caught() {
        let (history, mut observed) = good();
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        ledger.push(movement("local_sale", -1, 4, 5, "nobody", None));
        observed.stores[0].items.insert(
            "p".into(),
            ItemView {
                quantity: 4,
                reserved: 0,
                version: 5,
            },
        );
        observed.central.insert(
            (1, "p".into()),
            ItemView {
                quantity: 4,
                reserved: 0,
                version: 5,
            },
        );
        let failed = failing(&history, &observed);
        assert!(
            failed.contains(&"no movement without a request"),
            "{failed:?}"
        );
    }

    #[test]
    fn an_unresolved_202_and_a_key_that_bought_twice_are_caught() {
        let (mut history, mut observed) = good();
        let mut first = record("k1", Call::Remote, 202, Some(1), None, Some("P2"));
        first.key = Some("K".into());
        let mut retry = record("k2", Call::Remote, 200, Some(1), Some(4), Some("P3"));
        retry.key = Some("K".into());
        history.extend([first, retry]);
        observed
            .purchases
            .insert("P2".into(), ("PENDING".into(), None));
        let failed = failing(&history, &observed);
        assert!(
            failed.contains(&"every 202 resolved to CONFIRMED or REJECTED"),
            "{failed:?}"
        );
        assert!(
            failed.contains(&"a retried Idempotency-Key buys once"),
            "{failed:?}"
        );
    }

    #[test]
    fn a_central_that_never_converged_and_lost_events_are_caught() {
        let (history, mut observed) = good();
        observed.convergence = Err("store-1/p: store 5, Central 8".into());
        observed.stores[0].outbox_pending = 3;
        observed.groups[0].pending = 2;
        observed
            .dead_letters
            .push(("s".into(), "a real event".into()));
        let failed = failing(&history, &observed);
        assert!(
            failed.contains(&"Central's view equals every store's truth within 2 s of quiet"),
            "{failed:?}"
        );
        assert!(
            failed.contains(
                &"nothing lost: outboxes empty, groups drained, only the poison dead-lettered"
            ),
            "{failed:?}"
        );
    }

    /// A good run with a reservation of 4 held then committed after the remote purchase.
    fn with_reservation(end: &str) -> (Vec<Record>, Observed) {
        let (mut history, mut observed) = good();
        let mut reserve = record("rv", Call::Reserve, 201, Some(4), Some(1), None);
        reserve.reservation_id = Some("R1".into());
        history.push(reserve);
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        let mut held = movement("reserve", -4, 1, 5, "rv", None);
        held.reserved = 4;
        held.reservation_id = Some("R1".into());
        let mut ended = movement(end, 0, 1, 6, "rv", None);
        ended.reservation_id = Some("R1".into());
        ledger.extend([held, ended]);
        let item = ItemView {
            quantity: 1,
            reserved: 0,
            version: 6,
        };
        observed.stores[0].items.insert("p".into(), item);
        observed.central.insert((1, "p".into()), item);
        observed
            .reservations
            .insert("R1".into(), "COMMITTED".into());
        (history, observed)
    }

    #[test]
    fn a_committed_reservation_passes() {
        let (history, observed) = with_reservation("reserved_sale");
        assert!(
            failing(&history, &observed).is_empty(),
            "{:?}",
            failing(&history, &observed)
        );
    }

    #[test]
    fn a_sale_of_reserved_units_and_a_reservation_ended_twice_are_caught() {
        let (history, mut observed) = with_reservation("reserved_sale");
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        // A local sale that took a reserved unit: reserved fell without a reservation's end.
        ledger[4].reserved = 3;
        let mut twice = ledger[5].clone();
        twice.version = 7;
        ledger.push(twice);
        let failed = failing(&history, &observed);
        assert!(failed.contains(&"reserved units are only ever taken by their reservation (reserved = open reservations)"), "{failed:?}");
        assert!(
            failed.contains(&"each reservation ends exactly once: committed, released or expired"),
            "{failed:?}"
        );
    }

    #[test]
    fn an_expiry_is_explained_by_its_hold_even_when_the_reserve_got_no_answer() {
        const VERDICT: &str = "no movement without a request";
        let (mut history, mut observed) = with_reservation("expire");
        let reserve = history.last_mut().expect("the reserve");
        reserve.outcome = Outcome::Lost("Central killed".into());
        reserve.reservation_id = None;
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        ledger[5].correlation_id = None;
        let failed = failing(&history, &observed);
        assert!(!failed.contains(&VERDICT), "{failed:?}");
        // An expiry of a reservation no hold of the run made is not.
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        ledger[5].reservation_id = Some("R2".into());
        let failed = failing(&history, &observed);
        assert!(failed.contains(&VERDICT), "{failed:?}");
    }

    #[test]
    fn a_transfer_received_twice_or_left_in_transit_is_caught() {
        let (history, mut observed) = good();
        let mut truth = observed.stores[0].clone();
        truth.ledgers.clear();
        truth.items.clear();
        observed.stores.push(truth);
        let ledger = observed.stores[0].ledgers.get_mut("p").expect("ledger");
        let mut out = movement("transfer_out", -2, 3, 5, "t", None);
        out.transfer_id = Some("T1".into());
        ledger.push(out);
        observed.transfers.insert(
            "T1".into(),
            super::super::observe::TransferView {
                status: "RECEIVED".into(),
                from: 1,
                to: 2,
                product: "p".into(),
                quantity: 2,
            },
        );
        let failed = failing(&history, &observed);
        assert!(
            failed.contains(
                &"transfers conserve units and each ends once (received, rejected or cancelled)"
            ),
            "{failed:?}"
        );
    }
}
