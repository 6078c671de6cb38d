//! Accounts (PRODUCT.md C11): users with argon2id passwords, API tokens and cookie sessions
//! (secrets shown once, stored as SHA-256), login failures with a temporary lockout.

use crate::audit::{hex, instant};
use crate::{Actor, App, AppError, Result};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use jiff::{SignedDuration, Timestamp};
use patchward_core::access::{Permission, Role};
use patchward_proto::{ErrorCode, TokenView, UserView};
use patchward_store::{
    ControlStore, NewToken, NewUser, SessionRecord, TenantId, TokenRecord, UserRecord,
};
use sha2::{Digest, Sha256};

/// Failed logins in a row that lock an account, and for how long.
pub const LOCKOUT_AFTER: i64 = 5;
pub const LOCKOUT_FOR: SignedDuration = SignedDuration::from_mins(15);
/// A session lasts this long from login.
pub const SESSION_FOR: SignedDuration = SignedDuration::from_hours(12);
pub const MIN_PASSWORD: usize = 12;
/// Token lifetime when none is asked for, and the longest allowed.
pub const TOKEN_DAYS_DEFAULT: u32 = 90;
pub const TOKEN_DAYS_MAX: u32 = 3650;
/// Every secret this module makes starts with its kind, so a leaked one is recognisable.
const TOKEN_PREFIX: &str = "pwt_";

/// 32 random bytes, hex.
pub(crate) fn new_secret() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    Ok(hex(&b))
}

/// SHA-256 of a high-entropy secret, hex: what the store keeps and looks up in O(1).
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// argon2id with the crate's defaults (19 MiB, 2 passes), off the async runtime.
async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?
}

async fn password_matches(password: String, stored: Option<String>) -> bool {
    // An unknown user or a token-only account still costs one verification, so timing does
    // not tell which names exist.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let text = stored.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    Argon2::default()
                        .hash_password(b"no such user")
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        let Ok(parsed) = PasswordHash::new(&text) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && real
    })
    .await
    .unwrap_or(false)
}

fn role_of(u: &UserRecord) -> Result<Role> {
    u.role
        .parse()
        .map_err(|e: String| AppError::internal(format!("user {}: {e}", u.name)))
}

fn actor_of(u: &UserRecord) -> Result<Actor> {
    Ok(Actor {
        user_id: Some(u.id),
        name: u.name.clone(),
        role: role_of(u)?,
        tenant: u.tenant,
    })
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AppError::field(
            "name",
            format!("{name:?}: a user name is 1 to 64 letters, digits, '.', '_', '-' or '@'"),
        ))
    }
}

/// A session a login started: the cookie value and the CSRF token, each shown once.
pub struct NewSession {
    pub secret: String,
    pub csrf: String,
    pub actor: Actor,
    pub user: UserRecord,
    pub expires_at: Timestamp,
}

impl<S: ControlStore> App<S> {
    pub async fn user_view(&self, u: &UserRecord) -> Result<UserView> {
        let tenant = match u.tenant {
            Some(t) => self.store.tenant(t).await?.map(|t| t.name),
            None => None,
        };
        Ok(UserView {
            id: u.id,
            name: u.name.clone(),
            role: u.role.clone(),
            tenant,
            disabled: u.disabled,
            created_at: instant(u.created_at),
        })
    }

    /// Add a user. Tenant administrators add users to their own tenant; provider-wide ones
    /// to any (`tenant`), or provider-wide administrators with `tenant: None` and role admin.
    /// The checks of [`App::add_user`] that need no store (the CLI runs them before creating
    /// a tenant for the user).
    pub fn check_new_user(name: &str, role: &str, password: Option<&str>) -> Result<Role> {
        check_name(name)?;
        let role: Role = role
            .parse()
            .map_err(|e: String| AppError::field("role", e))?;
        if let Some(p) = password {
            if p.chars().count() < MIN_PASSWORD {
                return Err(AppError::field(
                    "password",
                    format!("a password has at least {MIN_PASSWORD} characters"),
                ));
            }
            if p.trim().is_empty() {
                return Err(AppError::field(
                    "password",
                    "a password cannot be only spaces",
                ));
            }
        }
        Ok(role)
    }

    pub async fn add_user(
        &self,
        actor: &Actor,
        name: &str,
        role: &str,
        tenant: Option<TenantId>,
        password: Option<String>,
    ) -> Result<UserRecord> {
        actor.require(Permission::Administer)?;
        let role = Self::check_new_user(name, role, password.as_deref())?;
        // Only administrators can be provider-wide; anyone else without a tenant belongs to
        // the default one (a single-tenant install never names tenants).
        let tenant = match actor.tenant {
            Some(own) => Some(own),
            None if tenant.is_none() && role != Role::Admin => Some(TenantId::DEFAULT),
            None => tenant,
        };
        let hash = match password {
            Some(p) => Some(hash_password(p).await?),
            None => None,
        };
        let user = self
            .store
            .create_user(
                &NewUser {
                    tenant,
                    name,
                    role: role.as_str(),
                    password_hash: hash.as_deref(),
                },
                self.now(),
            )
            .await?;
        self.record(
            actor,
            tenant,
            "user.create",
            &format!("user:{name}"),
            serde_json::json!({"after": {"name": name, "role": role.as_str(), "tenant": tenant.map(|t| t.0)}}),
        )
        .await?;
        Ok(user)
    }

    /// A user the actor may see (its own tenant's, or any for provider-wide administrators);
    /// others are "not found".
    async fn visible_user(
        &self,
        actor: &Actor,
        user: Option<UserRecord>,
        what: &str,
    ) -> Result<UserRecord> {
        match user {
            Some(u)
                if actor.provider_wide() || (u.tenant.is_some() && u.tenant == actor.tenant) =>
            {
                Ok(u)
            }
            _ => Err(AppError::not_found(what)),
        }
    }

    pub async fn users(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Vec<UserRecord>> {
        actor.require(Permission::Administer)?;
        Ok(self.store.users(actor.tenant.or(tenant)).await?)
    }

    pub async fn user_named(&self, actor: &Actor, name: &str) -> Result<UserRecord> {
        actor.require(Permission::Administer)?;
        let u = self.store.user_by_name(name).await?;
        self.visible_user(actor, u, &format!("user {name}")).await
    }

    pub async fn set_user_disabled(
        &self,
        actor: &Actor,
        id: i64,
        disabled: bool,
    ) -> Result<UserRecord> {
        actor.require(Permission::Administer)?;
        let u = self.store.user(id).await?;
        let u = self.visible_user(actor, u, &format!("user {id}")).await?;
        if Some(u.id) == actor.user_id && disabled {
            return Err(AppError::bad_request("you cannot disable your own account"));
        }
        self.store
            .set_user_disabled(u.id, disabled, self.now())
            .await?;
        self.record(
            actor,
            u.tenant,
            if disabled { "user.disable" } else { "user.enable" },
            &format!("user:{}", u.name),
            serde_json::json!({"before": {"disabled": u.disabled}, "after": {"disabled": disabled}}),
        )
        .await?;
        Ok(UserRecord { disabled, ..u })
    }

    pub fn token_view(&self, t: &TokenRecord, user: &str) -> TokenView {
        TokenView {
            id: t.id,
            user: user.to_string(),
            label: t.label.clone(),
            created_at: instant(t.created_at),
            expires_at: t.expires_at.map(instant),
            revoked_at: t.revoked_at.map(instant),
        }
    }

    /// A new API token for `user` (administrators: any user they can see; others: only
    /// themselves). Returns the record and the secret, which is never shown again.
    pub async fn create_token(
        &self,
        actor: &Actor,
        user: Option<&str>,
        label: Option<&str>,
        expires_days: Option<u32>,
    ) -> Result<(TokenRecord, UserRecord, String)> {
        let user =
            match user {
                Some(name) if actor.user_id.is_none() || !actor.name.eq_ignore_ascii_case(name) => {
                    self.user_named(actor, name).await?
                }
                _ => match actor.user_id {
                    Some(id) => self.store.user(id).await?.ok_or_else(|| {
                        AppError::unauthenticated("your account no longer exists")
                    })?,
                    None => return Err(AppError::field("user", "name the user the token is for")),
                },
            };
        if user.disabled {
            return Err(AppError::field(
                "user",
                format!("user {} is disabled", user.name),
            ));
        }
        let days = expires_days.unwrap_or(TOKEN_DAYS_DEFAULT);
        if !(1..=TOKEN_DAYS_MAX).contains(&days) {
            return Err(AppError::field(
                "expires_days",
                format!("a token lasts 1 to {TOKEN_DAYS_MAX} days"),
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", new_secret()?);
        let now = self.now();
        let label = label.unwrap_or("api").trim();
        if label.len() > 200 {
            return Err(AppError::field(
                "label",
                "a label has at most 200 characters",
            ));
        }
        let token = self
            .store
            .create_token(
                &NewToken {
                    user_id: user.id,
                    hash: &secret_hash(&secret),
                    label,
                    expires_at: Some(now + SignedDuration::from_hours(24 * i64::from(days))),
                },
                now,
            )
            .await?;
        self.record(
            actor,
            user.tenant,
            "token.create",
            &format!("token:{}", token.id),
            serde_json::json!({"after": {"user": user.name, "label": label, "expires_days": days}}),
        )
        .await?;
        Ok((token, user, secret))
    }

    /// Tokens the actor may see: its own, or (administrators) its tenant's users'.
    pub async fn tokens(&self, actor: &Actor) -> Result<Vec<(TokenRecord, String)>> {
        let mut out = Vec::new();
        if actor.role.allows(Permission::Administer) {
            for u in self.store.users(actor.tenant).await? {
                for t in self.store.tokens(Some(u.id)).await? {
                    out.push((t, u.name.clone()));
                }
            }
            out.sort_by_key(|(t, _)| std::cmp::Reverse((t.created_at, t.id)));
        } else if let Some(id) = actor.user_id {
            for t in self.store.tokens(Some(id)).await? {
                out.push((t, actor.name.clone()));
            }
        }
        Ok(out)
    }

    /// Revoke a token: its own user or an administrator who can see that user. Takes effect
    /// at the next request (nothing is cached).
    pub async fn revoke_token(&self, actor: &Actor, id: i64) -> Result<TokenRecord> {
        let token = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("token {id}")))?;
        let owner = self.store.user(token.user_id).await?;
        let own = actor.user_id == Some(token.user_id);
        let owner = if own {
            owner.ok_or_else(|| AppError::not_found(format!("token {id}")))?
        } else {
            if !actor.role.allows(Permission::Administer) {
                return Err(AppError::not_found(format!("token {id}")));
            }
            self.visible_user(actor, owner, &format!("token {id}"))
                .await?
        };
        let now = self.now();
        if !self.store.revoke_token(id, now).await? {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("token {id} was already revoked"),
            ));
        }
        self.record(
            actor,
            owner.tenant,
            "token.revoke",
            &format!("token:{id}"),
            serde_json::json!({"user": owner.name}),
        )
        .await?;
        Ok(TokenRecord {
            revoked_at: Some(now),
            ..token
        })
    }

    /// The actor a bearer token stands for: refused when unknown, revoked, expired, or its
    /// user is disabled.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Actor> {
        let refused = || AppError::unauthenticated("the token is unknown, revoked or expired");
        let (token, user) = self
            .store
            .token_by_hash(&secret_hash(secret.trim()))
            .await?
            .ok_or_else(refused)?;
        let now = self.now();
        if token.revoked_at.is_some() || token.expires_at.is_some_and(|e| e <= now) || user.disabled
        {
            return Err(refused());
        }
        actor_of(&user)
    }

    /// Log in with a password: starts a session. Five failures in a row lock the account for
    /// fifteen minutes (a correct password is refused while locked).
    pub async fn login(&self, name: &str, password: &str) -> Result<NewSession> {
        let refused = || AppError::unauthenticated("wrong user name or password");
        let user = self.store.user_by_name(name).await?;
        let now = self.now();
        if let Some(u) = &user
            && u.locked_until.is_some_and(|l| l > now)
        {
            return Err(AppError::new(
                ErrorCode::LockedOut,
                format!(
                    "too many failed logins: the account is locked until {}",
                    instant(u.locked_until.unwrap_or(now))
                ),
            ));
        }
        // The attempt is counted before the (slow) password check: concurrent guesses each
        // take a number, and those past the limit are refused without a check.
        let attempt = match &user {
            Some(u) => Some(
                self.store
                    .record_login(u.id, false, LOCKOUT_AFTER, now + LOCKOUT_FOR)
                    .await?,
            ),
            None => None,
        };
        if let (Some(u), Some(n)) = (&user, attempt)
            && n > LOCKOUT_AFTER
        {
            let _ = u;
            return Err(AppError::new(
                ErrorCode::LockedOut,
                format!(
                    "too many failed logins: the account is locked until {}",
                    instant(now + LOCKOUT_FOR)
                ),
            ));
        }
        let ok = password_matches(
            password.to_string(),
            user.as_ref().and_then(|u| u.password_hash.clone()),
        )
        .await;
        let Some(user) = user else {
            return Err(refused());
        };
        if !ok {
            if attempt == Some(LOCKOUT_AFTER) {
                self.record(
                    &Actor::system("login"),
                    user.tenant,
                    "user.lockout",
                    &format!("user:{}", user.name),
                    serde_json::json!({"failed_logins": LOCKOUT_AFTER}),
                )
                .await?;
            }
            return Err(refused());
        }
        if user.disabled {
            return Err(refused());
        }
        self.store
            .record_login(user.id, true, LOCKOUT_AFTER, now)
            .await?;
        let csrf = new_secret()?;
        let secret = new_secret()?;
        let expires_at = now + SESSION_FOR;
        self.store
            .create_session(&SessionRecord {
                hash: secret_hash(&secret),
                user_id: user.id,
                csrf: csrf.clone(),
                created_at: now,
                expires_at,
            })
            .await?;
        let actor = actor_of(&user)?;
        self.record(
            &actor,
            user.tenant,
            "session.login",
            &format!("user:{}", user.name),
            serde_json::json!({}),
        )
        .await?;
        Ok(NewSession {
            secret,
            csrf,
            actor,
            user,
            expires_at,
        })
    }

    /// The actor of a session cookie and the session's CSRF token.
    pub async fn authenticate_session(&self, secret: &str) -> Result<(Actor, String)> {
        let refused = || AppError::unauthenticated("the session has ended: log in again");
        let (session, user) = self
            .store
            .session(&secret_hash(secret))
            .await?
            .ok_or_else(refused)?;
        if session.expires_at <= self.now() || user.disabled {
            return Err(refused());
        }
        Ok((actor_of(&user)?, session.csrf))
    }

    pub async fn logout(&self, secret: &str) -> Result<()> {
        if let Some((_, user)) = self.store.session(&secret_hash(secret)).await? {
            self.store.delete_session(&secret_hash(secret)).await?;
            if let Ok(actor) = actor_of(&user) {
                self.record(
                    &actor,
                    user.tenant,
                    "session.logout",
                    &format!("user:{}", user.name),
                    serde_json::json!({}),
                )
                .await?;
            }
        }
        Ok(())
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        Ok(self.store.user(id).await?)
    }
}

impl Actor {
    /// The server itself acting (e.g. locking an account after failed logins).
    pub fn system(what: &str) -> Actor {
        Actor {
            user_id: None,
            name: format!("system:{what}"),
            role: Role::Admin,
            tenant: None,
        }
    }
}

impl<S: ControlStore> App<S> {
    /// The tenant of that name, created (and recorded in the audit log) if new: `import hosts
    /// --tenant` and `users add --tenant` on the command line.
    pub async fn ensure_tenant(
        &self,
        actor: &Actor,
        name: &str,
    ) -> Result<patchward_store::Tenant> {
        let name = name.trim();
        if let Some(t) = self.store.tenant_by_name(name).await? {
            return Ok(t);
        }
        self.create_tenant(actor, name).await
    }

    /// A new tenant (provider-wide administrators only).
    pub async fn create_tenant(
        &self,
        actor: &Actor,
        name: &str,
    ) -> Result<patchward_store::Tenant> {
        actor.require(Permission::Administer)?;
        if !actor.provider_wide() {
            return Err(AppError::forbidden(
                "only a provider-wide administrator creates tenants",
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::field(
                "name",
                "a tenant name is 1 to 100 printable characters",
            ));
        }
        if self.store.tenant_by_name(name).await?.is_some() {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("tenant {name} already exists"),
            ));
        }
        let t = self.store.ensure_tenant(name, self.now()).await?;
        self.record(
            actor,
            Some(t.id),
            "tenant.create",
            &format!("tenant:{name}"),
            serde_json::json!({}),
        )
        .await?;
        Ok(t)
    }
}

impl<S: ControlStore> App<S> {
    /// First run: when no user exists, create the provider-wide administrator `admin` with a
    /// random password, returned once for the operator to note (and replace).
    pub async fn bootstrap_admin(&self) -> Result<Option<(String, String)>> {
        if !self.store.users(None).await?.is_empty() {
            return Ok(None);
        }
        let password = new_secret()?[..24].to_string();
        let user = self
            .add_user(
                &Actor::system("bootstrap"),
                "admin",
                "admin",
                None,
                Some(password.clone()),
            )
            .await?;
        Ok(Some((user.name, password)))
    }
}
