//! The store's consumer of Central's commands: remote purchases and snapshot requests, applied
//! in one transaction per batch with the inbox, so a redelivered command changes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use stockmesh_bus::{Handler, HandlerError, Inbox};
use stockmesh_core::{Envelope, Event};
use tracing::Instrument;

use crate::error::StoreError;
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
    async fn handle(&self, events: &[Envelope]) -> Result<(), HandlerError> {
        let service = &self.service;
        let mut tx = service.database().writer.begin().await?;
        let now = stockmesh_core::now().timestamp_millis();
        let mut outcomes = Vec::with_capacity(events.len());
        for envelope in events {
            if envelope.store_id != *service.id() {
                return Err(HandlerError::Permanent(format!(
                    "command addressed to {} reached {}",
                    envelope.store_id,
                    service.id()
                )));
            }
            let kind = envelope.event.type_name();
            if !Inbox::record(&mut tx, envelope.id, now).await? {
                outcomes.push((kind, "duplicate"));
                continue;
            }
            let span = tracing::info_span!(
                "command",
                r#type = kind,
                correlation_id = envelope.correlation_id.as_ref().map(|c| c.to_string()),
            );
            let correlation = envelope.correlation_id.clone();
            match &envelope.event {
                Event::InventoryItemRemotePurchase(command) => {
                    service
                        .apply_remote_purchase(&mut tx, command, correlation)
                        .instrument(span)
                        .await
                        .map_err(transient)?;
                }
                Event::SnapshotRequested(_) => {
                    let items = service
                        .append_snapshot(&mut tx, correlation)
                        .instrument(span.clone())
                        .await
                        .map_err(transient)?;
                    span.in_scope(|| tracing::info!(items, "snapshot queued for Central"));
                }
                other => {
                    return Err(HandlerError::Permanent(format!(
                        "a store does not accept {} commands",
                        other.type_name()
                    )));
                }
            }
            outcomes.push((kind, "applied"));
        }
        tx.commit().await?;
        service.outbox_signal().notify();
        for (kind, outcome) in outcomes {
            metrics::counter!("stockmesh_events_consumed_total", "node" => service.id().to_string(), "type" => kind, "outcome" => outcome)
                .increment(1);
        }
        Ok(())
    }
}
