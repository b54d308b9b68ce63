//! Domain events out of the system: the outbox written inside state-changing transactions, the
//! relay that publishes what committed, the `EventBus` port with its two adapters, and the
//! consumer-side deduper that makes at-least-once delivery safe.

pub mod bus;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dedupe;
pub mod envelope;
pub mod eventbridge;
pub mod in_process;
pub mod outbox;
pub mod relay;
pub mod stream;
#[cfg(test)]
mod test_support;

pub use bus::{BusError, EventBus};
pub use dedupe::Deduper;
pub use envelope::DomainEvent;
pub use eventbridge::EventBridgeBus;
pub use in_process::{EventHandler, InProcessBus};
pub use outbox::{outbox_put, OUTBOX_SHARDS};
pub use relay::{Relay, RelayError};
