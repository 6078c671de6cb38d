//! `import hosts`: inventory files (CSV, estate TOML, systeminfo, wmic qfe, Get-HotFix) parsed
//! and checked first; only when all are good are the servers merged with what is stored, in
//! one write transaction (nothing partial, no lost concurrent change).

use crate::{Actor, App, AppError, Result};
use patchward_core::access::Permission;
use patchward_core::inventory::{Estate, Server};
use patchward_feeds::input::{read_input, walk};
use patchward_feeds::inventory::{self, Inventory};
use patchward_feeds::{ParseError, ParseErrors};
use patchward_store::{ControlStore, TenantId};
use std::collections::HashMap;
use std::path::PathBuf;

/// What `import hosts` found, before storing.
#[derive(Debug, Default)]
pub struct HostBatch {
    pub servers: Vec<Server>,
    pub estate: Option<Estate>,
    pub warnings: Vec<String>,
}

impl HostBatch {
    /// Add one file's content (`name` is how errors name it). Errors name the file, line and
    /// field; the batch is unusable after an error only in the sense that the caller must not
    /// store it.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> std::result::Result<(), ParseErrors> {
        match inventory::parse(name, bytes)? {
            Inventory::Csv(inv) => {
                self.warnings
                    .extend(inv.warnings.iter().map(|w| format!("{name}: {w}")));
                self.servers.extend(inv.servers);
            }
            Inventory::Estate(estate) => {
                if self.estate.is_some() {
                    return Err(ParseError::whole(
                        name,
                        "a second estate file in one import; import them one at a time",
                    )
                    .into());
                }
                let mut estate = *estate;
                // The servers travel in `servers`; `import_hosts` puts them back merged.
                self.servers.append(&mut estate.servers);
                self.estate = Some(estate);
            }
            Inventory::Captures(caps) => {
                for cap in caps {
                    self.warnings
                        .extend(cap.warnings.iter().map(|w| format!("{name}: {w}")));
                    let mut server = cap.to_server(name)?;
                    if cap.kbs.is_empty() && cap.build.is_none() {
                        return Err(ParseError::whole(
                            name,
                            "the capture lists no KBs and no OS build",
                        )
                        .into());
                    }
                    server.last_scan = None;
                    self.servers.push(server);
                }
            }
        }
        Ok(())
    }
}

/// Flatten parse errors into lines (file, line, field).
pub fn error_lines(e: &ParseErrors, name: &str) -> Vec<String> {
    let mut out: Vec<String> = e.errors.iter().map(|e| e.to_string()).collect();
    if e.truncated {
        out.push(format!("{name}: more errors not shown"));
    }
    out
}

/// Parse every inventory file under `paths`; any error fails the whole batch.
pub fn parse_hosts(paths: &[PathBuf]) -> std::result::Result<HostBatch, Vec<String>> {
    let files = walk(paths).map_err(|e| vec![e.to_string()])?;
    let mut batch = HostBatch::default();
    let mut errors = Vec::new();
    for path in &files {
        let name = path.display().to_string();
        let bytes = match read_input(path) {
            Ok(b) => b,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        if let Err(e) = batch.add(&name, &bytes) {
            errors.extend(error_lines(&e, &name));
        }
    }
    if errors.is_empty() {
        Ok(batch)
    } else {
        Err(errors)
    }
}

/// A server named twice in one batch (a CSV row and a capture) merges in file order.
fn merge_within(servers: Vec<Server>) -> Vec<Server> {
    let mut merged: Vec<Server> = Vec::with_capacity(servers.len());
    let mut position: HashMap<String, usize> = HashMap::with_capacity(servers.len());
    for s in servers {
        let key = s.name.to_ascii_lowercase();
        match position.get(&key) {
            Some(&i) => {
                let old = std::mem::take(&mut merged[i]);
                merged[i] = old.updated_with(s);
            }
            None => {
                position.insert(key, merged.len());
                merged.push(s);
            }
        }
    }
    merged
}

impl<S: ControlStore> App<S> {
    /// Store a parsed batch in `tenant`: captures refresh OS, build and KBs and keep inventory
    /// facts ([`Server::updated_with`]); an estate file also replaces the tenant's services,
    /// dependencies, windows, rings... Returns how many servers were stored.
    pub async fn import_hosts(
        &self,
        actor: &Actor,
        tenant: TenantId,
        batch: HostBatch,
    ) -> Result<usize> {
        actor.require(Permission::Operate)?;
        if batch.servers.is_empty() && batch.estate.is_none() {
            return Err(AppError::bad_request("the input names no server"));
        }
        let servers = merge_within(batch.servers);
        let names: Vec<String> = servers.iter().take(20).map(|s| s.name.clone()).collect();
        let n = self
            .store
            .merge_servers(
                tenant,
                servers,
                batch.estate,
                Server::updated_with,
                self.now(),
            )
            .await?;
        self.record(
            actor,
            Some(tenant),
            "hosts.import",
            &format!("servers:{n}"),
            serde_json::json!({"servers": n, "first": names}),
        )
        .await?;
        Ok(n)
    }
}
