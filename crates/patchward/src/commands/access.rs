//! `users`, `tokens`, `audit verify`: administration from the server's own machine, acting
//! as the provider-wide command line (recorded in the audit log as `cli`).

use super::{app, open};
use crate::render::Table;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use patchward_app::Actor;
use std::io::Read;
use std::path::Path;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a user (the password is read from stdin, never from the command line).
    Add(UserAddArgs),
    /// List users with their role, tenant and state.
    List,
    /// Disable a user: their sessions end and tokens stop working at once.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
}

#[derive(Args)]
pub struct UserAddArgs {
    pub name: String,
    /// viewer, owner, operator, approver or admin.
    #[arg(long)]
    pub role: String,
    /// Read the password (at least 12 characters) from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create an API token for a user; prints only the token (shown once).
    Create(TokenCreateArgs),
    /// Revoke a token by id; takes effect at the next request.
    Revoke { id: i64 },
    /// List tokens (never their secrets).
    List,
}

#[derive(Args)]
pub struct TokenCreateArgs {
    #[arg(long)]
    pub user: String,
    /// Days until it expires (default 90, at most 3650).
    #[arg(long)]
    pub expires_days: Option<u32>,
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exits non-zero naming the first entry that does not match.
    Verify,
}

/// `users`: `tenant` (the global `--tenant`) is the new user's tenant, created if new; an
/// admin without one is provider-wide, anyone else belongs to the default tenant.
pub async fn users(db: &Path, tenant: Option<&str>, c: UsersCommand) -> Result<()> {
    let store = open(db).await?;
    let app = app(store);
    let cli = Actor::cli();
    match c {
        UsersCommand::Add(a) => {
            let password = if a.password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the password from stdin")?;
                let line = text.lines().next().unwrap_or("").to_string();
                Some(line)
            } else {
                None
            };
            // Check the user first: a refused user creates no tenant.
            patchward_app::App::<patchward_app::AnyStore>::check_new_user(
                &a.name,
                &a.role,
                password.as_deref(),
            )
            .map_err(|e| match e.field.as_deref() {
                Some("password") => anyhow::anyhow!("--password-stdin: {}", e.message),
                Some(f) => anyhow::anyhow!("--{}: {}", f.replace('_', "-"), e.message),
                None => anyhow::anyhow!(e.message),
            })?;
            let tenant = match tenant {
                None => None,
                Some(n) => Some(app.ensure_tenant(&cli, n).await?.id),
            };
            let u = app
                .add_user(&cli, &a.name, &a.role, tenant, password)
                .await
                .map_err(|e| match e.field.as_deref() {
                    Some("password") => anyhow::anyhow!("--password-stdin: {}", e.message),
                    Some(f) => anyhow::anyhow!("--{}: {}", f.replace('_', "-"), e.message),
                    None => anyhow::anyhow!(e.message),
                })?;
            let v = app.user_view(&u).await?;
            eprintln!(
                "user {} added: role {}, {}{}",
                v.name,
                v.role,
                v.tenant
                    .map(|t| format!("tenant {t}"))
                    .unwrap_or_else(|| "provider-wide".into()),
                if u.password_hash.is_none() {
                    " (no password: tokens only)"
                } else {
                    ""
                }
            );
        }
        UsersCommand::List => {
            let mut t = Table::new(&["id", "name", "role", "tenant", "state", "created"]);
            for u in app.users(&cli, None).await? {
                let v = app.user_view(&u).await?;
                t.row(vec![
                    v.id.to_string(),
                    v.name,
                    v.role,
                    v.tenant.unwrap_or_else(|| "(provider-wide)".into()),
                    if v.disabled { "disabled" } else { "active" }.into(),
                    v.created_at,
                ]);
            }
            print!("{}", t.render());
        }
        UsersCommand::Disable { name } => {
            let u = app.user_named(&cli, &name).await?;
            app.set_user_disabled(&cli, u.id, true).await?;
            eprintln!("user {} disabled", u.name);
        }
        UsersCommand::Enable { name } => {
            let u = app.user_named(&cli, &name).await?;
            app.set_user_disabled(&cli, u.id, false).await?;
            eprintln!("user {} enabled", u.name);
        }
    }
    Ok(())
}

pub async fn tokens(db: &Path, c: TokensCommand) -> Result<()> {
    let store = open(db).await?;
    let app = app(store);
    let cli = Actor::cli();
    match c {
        TokensCommand::Create(a) => {
            let (t, user, secret) = app
                .create_token(&cli, Some(&a.user), a.label.as_deref(), a.expires_days)
                .await
                .map_err(|e| match &e.field {
                    Some(f) => anyhow::anyhow!("--{}: {}", f.replace('_', "-"), e.message),
                    None => anyhow::anyhow!(e.message),
                })?;
            // The token alone on stdout, so `TOKEN=$(patchward tokens create ...)` works.
            println!("{secret}");
            eprintln!(
                "token {} for {} expires {} (shown once: store it now)",
                t.id,
                user.name,
                t.expires_at.map(|e| e.to_string()).unwrap_or_default()
            );
        }
        TokensCommand::Revoke { id } => {
            app.revoke_token(&cli, id).await?;
            eprintln!("token {id} revoked");
        }
        TokensCommand::List => {
            let mut t = Table::new(&["id", "user", "label", "created", "expires", "revoked"]);
            for (tok, user) in app.tokens(&cli).await? {
                let v = app.token_view(&tok, &user);
                t.row(vec![
                    v.id.to_string(),
                    v.user,
                    v.label,
                    v.created_at,
                    v.expires_at.unwrap_or_default(),
                    v.revoked_at.unwrap_or_default(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

pub async fn audit(db: &Path, c: AuditCommand) -> Result<()> {
    let store = open(db).await?;
    let app = app(store);
    match c {
        AuditCommand::Verify => {
            let v = app.verify_audit(&Actor::cli()).await?;
            if v.ok {
                println!("audit log: {} entries, chain intact", v.entries);
                Ok(())
            } else {
                bail!(
                    "audit log: {} (entry {}); {} entries before it are intact",
                    v.problem.unwrap_or_default(),
                    v.first_bad.unwrap_or_default(),
                    v.entries
                )
            }
        }
    }
}
