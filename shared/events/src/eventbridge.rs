//! The AWS bus: PutEvents to a named EventBridge bus. Rules on that bus route events by
//! `source = "linkcrm"` and `detail-type = <event type>`; `detail` is the envelope.

use crate::{BusError, DomainEvent, EventBus};
use async_trait::async_trait;
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

pub const SOURCE: &str = "linkcrm";
/// PutEvents takes at most 10 entries per call.
pub const MAX_ENTRIES: usize = 10;
/// PutEvents refuses requests whose entries add up to more than 256 KiB.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(config: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        Self::from_client(aws_sdk_eventbridge::Client::new(config), bus_name)
    }

    pub fn from_client(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus { client, bus_name: bus_name.into() }
    }

    /// A client for a local EventBridge-protocol server (moto) with static test credentials.
    pub fn for_endpoint(endpoint: &str, bus_name: impl Into<String>) -> Self {
        let conf = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "linkcrm-test"))
            .endpoint_url(endpoint)
            .build();
        Self::from_client(aws_sdk_eventbridge::Client::from_conf(conf), bus_name)
    }

    fn entry(&self, event: &DomainEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(SOURCE)
            .detail_type(&event.r#type)
            .detail(event.to_json())
            .build()
    }

    async fn put_batch(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        let out = self
            .client
            .put_events()
            .set_entries(Some(events.iter().map(|e| self.entry(e)).collect()))
            .send()
            .await
            .map_err(|e| {
                BusError::Unavailable(format!("PutEvents: {}", aws_sdk_eventbridge::error::DisplayErrorContext(e)))
            })?;
        // Entries come back in request order; an entry with an error code was not published.
        let failures: Vec<String> = out
            .entries()
            .iter()
            .zip(events)
            .filter_map(|(r, e)| {
                r.error_code().map(|code| format!("{}: {code} {}", e.id, r.error_message().unwrap_or_default()))
            })
            .collect();
        let failed = (out.failed_entry_count().max(0) as usize).max(failures.len());
        // A short answer (fewer result entries than events) cannot show which went out: refuse it.
        if failed > 0 || out.entries().len() != events.len() {
            return Err(BusError::Refused {
                failed: failed.max(1),
                detail: format!(
                    "bus {}: {} of {} entries answered; {}",
                    self.bus_name,
                    out.entries().len(),
                    events.len(),
                    failures.join("; ")
                ),
            });
        }
        Ok(())
    }
}

/// Splits events into PutEvents requests by entry count and by size. An entry's size is counted
/// as AWS does: source, detail type and detail bytes plus 14 bytes for the time.
pub fn batches(events: &[DomainEvent]) -> Vec<&[DomainEvent]> {
    let size = |e: &DomainEvent| SOURCE.len() + e.r#type.len() + e.to_json().len() + 14;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        let s = size(e);
        if i > start && (i - start == MAX_ENTRIES || bytes + s > MAX_REQUEST_BYTES) {
            out.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += s;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        for batch in batches(events) {
            self.put_batch(batch).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<DomainEvent> = (0..23).map(|i| DomainEvent::new("t", None, json!(i))).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
        assert!(batches(&[]).is_empty());

        let big = "x".repeat(100 * 1024);
        let large: Vec<DomainEvent> = (0..5).map(|_| DomainEvent::new("t", None, json!(big))).collect();
        let sizes: Vec<usize> = batches(&large).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }
}
