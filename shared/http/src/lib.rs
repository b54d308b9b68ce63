//! The REST door: the `/v1` route table, the axum router over the executor, problem+json edges,
//! and the OpenAPI document generated from the table and the catalogue's schemas.

#![allow(clippy::result_large_err)]

pub mod edge;
pub mod headers;
pub mod openapi;
pub mod rest;
pub mod routes;

pub use rest::{router_with, Extras};
