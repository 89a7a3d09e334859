//! The one integration-test binary: runs the real `steward` binary as a user would.
//! Tests are named for the promise they guard.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step should fail the test loudly"
)]

mod http;
mod kit;
mod postgres;

mod api;
mod audit;
mod backup;
mod banner;
mod centre;
mod cli;
mod damage;
mod datasets;
mod demo;
mod docs;
mod evidence;
mod hygiene;
mod incidents;
mod justify;
mod outbox;
mod policy;
mod selfservice;
mod serve;
mod visitor;
