//! The store's consumer handler of Central's commands. The consumer owns the transaction (inbox
//! included); this handler routes each fresh command to its flow: store-decided requests to
//! [`crate::decided`], snapshot requests to [`crate::repair`], which sends them in pages. After the commit it wakes the relay.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::AnyConnection;
use stockmesh_bus::{Handler, HandlerError};
use stockmesh_core::{Envelope, Event};
use tracing::Instrument;

use crate::decided::decide_once;
use crate::error::StoreError;
use crate::repair::request_resync;
use crate::service::StoreService;

/// Applies commands addressed to this store.
#[derive(Debug, Clone)]
pub struct CommandHandler {
    service: Arc<StoreService>,
}

impl CommandHandler {
    /// A handler applying commands to `service`'s store.
    pub fn new(service: Arc<StoreService>) -> Self {
        Self { service }
    }
}

fn transient(error: StoreError) -> HandlerError {
    HandlerError::Transient(error.into())
}

#[async_trait]
impl Handler for CommandHandler {
    type Committed = ();

    async fn apply(&self, tx: &mut AnyConnection, fresh: &[&Envelope]) -> Result<(), HandlerError> {
        let service = &self.service;
        for envelope in fresh {
            if envelope.store_id != *service.id() {
                return Err(HandlerError::Permanent(format!(
                    "command addressed to {} reached {}",
                    envelope.store_id,
                    service.id()
                )));
            }
            let span = tracing::info_span!(
                "command",
                r#type = envelope.event.type_name(),
                correlation_id = envelope.correlation_id.as_ref().map(|c| c.to_string()),
            );
            // The decision joins the trace of the request that sent the command.
            stockmesh_http::trace::adopt(&span, envelope.traceparent.as_deref());
            let correlation = envelope.correlation_id.clone();
            match &envelope.event {
                Event::InventoryItemRemotePurchase(command) => {
                    decide_once(service, tx, command, correlation)
                        .instrument(span)
                        .await
                        .map_err(transient)?;
                }
                Event::ReservationRequested(command) => {
                    decide_once(service, tx, command, correlation)
                        .instrument(span)
                        .await
                        .map_err(transient)?;
                }
                Event::ReservationActionRequested(command) => {
                    decide_once(service, tx, command, correlation)
                        .instrument(span)
                        .await
                        .map_err(transient)?;
                }
                Event::TransferShipRequested(command) => {
                    decide_once(service, tx, command, correlation)
                        .instrument(span)
                        .await
                        .map_err(transient)?;
                }
                Event::TransferReceiveRequested(command) => {
                    decide_once(service, tx, command, correlation)
                        .instrument(span)
                        .await
                        .map_err(transient)?;
                }
                Event::SnapshotRequested(request) => {
                    let started = request_resync(tx, request.changed_after, correlation.as_ref())
                        .await
                        .map_err(transient)?;
                    span.in_scope(|| {
                        tracing::info!(
                            started,
                            changed_after = ?request.changed_after,
                            "resynchronisation asked by Central"
                        );
                    });
                }
                other => {
                    return Err(HandlerError::Permanent(format!(
                        "a store does not accept {} commands",
                        other.type_name()
                    )));
                }
            }
        }
        Ok(())
    }

    async fn after_commit(&self, (): ()) {
        self.service.outbox_signal().notify();
    }
}
