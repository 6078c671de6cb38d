//! The Patchward agent (C7): enrols with a one-time token, keeps its credential in a state
//! file, checks in with jitter, and reports its server's inventory when it changes.
//!
//! The protocol loop ([`Agent`]) is the same for every host; what a host is lives behind the
//! [`Host`] trait: [`simulated::SimulatedHost`] (a deterministic Windows Server fed by
//! Microsoft's real KB → build table, for tests, demos and load tests) and, on Windows,
//! `wua::WuaHost` (PowerShell, the registry and the Windows Update Agent API; the only
//! unsafe code in Patchward is its COM module). On Windows it runs as a service
//! (`service`: the `patchward-agent` executable's `install`).

pub mod client;
pub mod host;
pub mod probe;
#[cfg(windows)]
pub mod service;
pub mod simulated;
pub mod state;
#[cfg(windows)]
pub mod wua;

mod agent;

pub use agent::{Agent, AgentError, Tick};
pub use client::{AgentClient, ClientError, Tls};
pub use host::Host;
pub use state::AgentState;

/// This agent's version, sent with every call.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
