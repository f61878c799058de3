//! HTTP handlers. The route table itself lives in `startup.rs`.

pub mod api;
pub mod service;
