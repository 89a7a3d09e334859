//! The one integration-test binary: runs the real `steward` binary as a user would.
//! Tests are named for the promise they guard.

mod kit;

mod audit;
mod cli;
mod demo;
