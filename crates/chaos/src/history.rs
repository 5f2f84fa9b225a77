//! The recorded history: every request the workload made and what came back.

use serde::Serialize;

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Call {
    /// `POST /inventory` at a store.
    Create,
    /// `PUT /inventory/{p}` at a store.
    Set,
    /// `POST /purchase/{p}` at a store.
    Local,
    /// `POST /purchase/{s}/{p}` at Central.
    Remote,
    /// `GET /inventory/{p}` at a store.
    ReadStore,
    /// `GET /inventory/{s}/{p}` at Central.
    ReadCentral,
    /// `POST /reservations` at Central.
    Reserve,
    /// `POST /reservations/{id}/commit` at Central.
    Commit,
    /// `DELETE /reservations/{id}` at Central.
    Release,
    /// `POST /transfers` at Central (from `store`).
    Transfer,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The server answered with this status.
    Answered(u16),
    /// No answer (connection refused or reset, timeout): the effect is unknown.
    Lost(String),
}

/// One request and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Its correlation id (`X-Request-Id`), unique in the run.
    pub id: String,
    /// What was called.
    pub call: Call,
    /// Target store, 1-based.
    pub store: usize,
    /// Target product.
    pub product: String,
    /// The quantity sent (set or purchase), if any.
    pub quantity: Option<i64>,
    /// The `Idempotency-Key` sent, if any.
    pub key: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The `quantity` field of the answer, if it had one.
    pub seen_quantity: Option<i64>,
    /// The `purchaseId` of the answer, if it had one.
    pub purchase_id: Option<String>,
    /// The reservation made (the answer's `reservationId`) or acted on.
    pub reservation_id: Option<String>,
    /// The `transferId` of the answer, if it had one.
    pub transfer_id: Option<String>,
    /// Milliseconds from the start of the run to the answer.
    pub at_ms: u64,
}

impl Record {
    /// The status, when the request was answered.
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Answered(status) => Some(status),
            Outcome::Lost(_) => None,
        }
    }
}
