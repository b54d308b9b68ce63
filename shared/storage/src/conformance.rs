//! The conformance suite every Store adapter passes.
