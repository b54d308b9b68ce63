//! Clients of outside data providers (Apollo for contacts), with their error handling.
