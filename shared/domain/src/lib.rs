//! The domain vocabulary: ids, entities, enumerations and the rules that need no I/O.

pub mod campaign;
pub mod crm;
pub mod derive;
pub mod enums;
pub mod event_types;
pub mod gates;
pub mod id;
pub mod jobs;
pub mod lead;
pub mod links;
pub mod normalize;
pub mod platform;
pub mod scores;
pub mod send_window;
pub mod stages;
pub mod time;

pub use id::{new_id, parse_id, IdKind};
