//! The domain vocabulary: ids, entities, enumerations and the rules that need no I/O.

pub mod id;

pub use id::{new_id, parse_id, IdKind};
