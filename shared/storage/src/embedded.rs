//! Embedded adapter (redb).
