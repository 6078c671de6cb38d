//! The protocol loop: enrol once, then check in, report the inventory when the server asks,
//! sleep the interval plus jitter, and stop for good when revoked.

use crate::AGENT_VERSION;
use crate::client::{AgentClient, ClientError};
use crate::host::Host;
use crate::state::{AgentState, StateError};
use jiff::Timestamp;
use patchward_proto::ErrorCode;
use patchward_proto::agent::{AGENT_PROTOCOL, CheckIn, Directive, EnrolRequest};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("not enrolled: give an enrolment token (--enrol-token)")]
    NotEnrolled,
    #[error("the state file belongs to {0}; this agent was told to use {1}")]
    OtherServer(String, String),
    /// The server revoked this agent: it stops and must be enrolled again.
    #[error("this agent was revoked by the server: {0}")]
    Revoked(String),
}

/// What one check-in did.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub sent_inventory: bool,
    /// How long to wait before the next check-in (interval plus jitter).
    pub next: Duration,
    /// A message from the server the operator should see (upgrade).
    pub notice: Option<String>,
}

/// One agent: its host, its client and, once enrolled, its state.
pub struct Agent<H: Host> {
    pub host: H,
    client: AgentClient,
    /// Where the state file lives; `None` keeps it in memory only (simulated agents).
    state_dir: Option<PathBuf>,
    state: Option<AgentState>,
    /// A deterministic jitter source (simulations) or random (`None`).
    jitter_seed: Option<u64>,
}

impl<H: Host> Agent<H> {
    /// An agent for `host`; loads its state from `state_dir` when it enrolled before.
    pub fn new(
        host: H,
        client: AgentClient,
        state_dir: Option<PathBuf>,
    ) -> Result<Self, AgentError> {
        let state = match &state_dir {
            Some(dir) => AgentState::load(dir)?,
            None => None,
        };
        if let Some(s) = &state
            && s.server_url.trim_end_matches('/') != client.server_url()
        {
            return Err(AgentError::OtherServer(
                s.server_url.clone(),
                client.server_url().to_string(),
            ));
        }
        Ok(Agent {
            host,
            client,
            state_dir,
            state,
            jitter_seed: None,
        })
    }

    /// Draw jitter from this seed instead of the system's randomness (reproducible runs).
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    pub fn state(&self) -> Option<&AgentState> {
        self.state.as_ref()
    }

    /// Enrol with `token` unless already enrolled. Returns whether it enrolled now.
    pub async fn ensure_enrolled(&mut self, token: Option<&str>) -> Result<bool, AgentError> {
        if self.state.is_some() {
            return Ok(false);
        }
        let token = token.ok_or(AgentError::NotEnrolled)?;
        let reply = self
            .client
            .enrol(&EnrolRequest {
                token: token.to_string(),
                hostname: self.host.hostname(),
                protocol: AGENT_PROTOCOL,
                agent_version: AGENT_VERSION.to_string(),
            })
            .await?;
        let state = AgentState {
            server_url: self.client.server_url().to_string(),
            agent_id: reply.agent_id,
            server: reply.server,
            credential: reply.credential,
            protocol: reply.protocol,
            reported_digest: None,
        };
        self.save(&state)?;
        self.state = Some(state);
        Ok(true)
    }

    fn save(&self, state: &AgentState) -> Result<(), AgentError> {
        if let Some(dir) = &self.state_dir {
            state.save(dir)?;
        }
        Ok(())
    }

    /// One check-in, and the inventory report when the server wants it.
    pub async fn tick(&mut self, now: Timestamp) -> Result<Tick, AgentError> {
        let mut state = self.state.clone().ok_or(AgentError::NotEnrolled)?;
        let report = self.host.inventory(now);
        let digest = report.digest();
        let reply = self
            .client
            .check_in(
                &state.credential,
                &CheckIn {
                    protocol: AGENT_PROTOCOL,
                    agent_version: AGENT_VERSION.to_string(),
                    inventory_digest: Some(digest.clone()),
                },
            )
            .await
            .map_err(revoked)?;
        let notice = reply
            .directive
            .as_ref()
            .map(|Directive::Upgrade { message, .. }| message.clone());
        let mut sent = false;
        if reply.send_inventory {
            self.client
                .inventory(&state.credential, &report)
                .await
                .map_err(revoked)?;
            state.reported_digest = Some(digest);
            state.protocol = reply.protocol;
            self.save(&state)?;
            self.state = Some(state);
            sent = true;
        }
        let jitter = u64::from(reply.jitter_seconds) * 1000;
        let spread = if jitter == 0 {
            0
        } else {
            self.random() % jitter
        };
        Ok(Tick {
            sent_inventory: sent,
            next: Duration::from_secs(u64::from(reply.check_in_seconds.max(1)))
                + Duration::from_millis(spread),
            notice,
        })
    }

    fn random(&mut self) -> u64 {
        match &mut self.jitter_seed {
            Some(s) => crate::simulated::splitmix(s),
            None => {
                let mut b = [0u8; 8];
                let _ = getrandom::fill(&mut b);
                u64::from_le_bytes(b)
            }
        }
    }
}

fn revoked(e: ClientError) -> AgentError {
    match e {
        ClientError::Refused(api) if api.code == ErrorCode::AgentRevoked => {
            AgentError::Revoked(api.message)
        }
        other => AgentError::Client(other),
    }
}
