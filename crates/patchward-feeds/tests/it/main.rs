//! Integration tests of the feed, host-capture and inventory parsers against the real fixtures
//! in `fixtures/` (see `fixtures/PROVENANCE.md`). One test binary for the whole crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod estate;
mod feeds;
mod hosts;
mod input;
mod inventory;
mod props;

use std::path::PathBuf;

/// `fixtures/` at the workspace root.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A fixture's bytes, decompressed (zstd/gzip) by `read_input`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    patchward_feeds::read_input(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// A fixture's name as used in error messages.
pub fn name(rel: &str) -> String {
    rel.rsplit('/').next().unwrap_or(rel).to_string()
}
