//! The command line: `serve` (default), `migrate`, `create-admin`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::app::{Application, announce_setup_link};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::api_keys::{self, NewApiKey};
use crate::domain::email::Email;
use crate::domain::events::{Actor, RequestContext};
use crate::domain::password::{Password, PasswordService};
use crate::domain::rbac::Role;
use crate::domain::recovery;
use crate::domain::setup::{self, SetupError};
use crate::domain::users::{self, DisplayName, NewStaff};
use crate::domain::{Core, audit};
use crate::store::Store;
use crate::telemetry;

#[derive(Parser)]
#[command(
    name = "tokenbroker",
    version,
    about = "Multitenant access console and OAuth 2.0 token service"
)]
pub struct Cli {
    /// TOML configuration file; `TB_*` environment variables override it.
    #[arg(long, short, env = "TB_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the console and token service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create the first superadmin — or, later, a further superadmin or security staff member
    /// (how a single superadmin gets a second person to approve what needs two). The password is
    /// read from a prompt, or from standard input when it is not a terminal — never from an
    /// argument.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Display name; defaults to the part of the e-mail address before the `@`.
        #[arg(long)]
        name: Option<String>,
        /// `superadmin` (the default) or `security`.
        #[arg(long, default_value = "superadmin")]
        role: String,
    },
    /// Create a personal automation key for an active staff member and print it (only the key,
    /// on its own line, once). The key acts as its owner, limited to the permissions given.
    CreateApiKey {
        /// The owner's e-mail address.
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// A permission name (`mint_credentials`), repeated; `all` for every one the owner holds.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// Limit the key to this tenant (slug), repeated; default: every tenant the owner may act in.
        #[arg(long = "tenant")]
        tenants: Vec<String>,
        /// Limit the key to this network (CIDR), repeated.
        #[arg(long = "network")]
        networks: Vec<String>,
        /// How long it lives: `30d`, `12h` (default 90 days, at most a year).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Break-glass account recovery for someone who lost every passkey and recovery code (an
    /// installation with one superadmin): removes them and every session, and prints a single-use
    /// link (valid an hour) that, after the person's password, lets them enrol a new passkey.
    /// Recorded as an event and a high alert.
    Recover {
        #[arg(long)]
        email: String,
        /// Why (kept in the event).
        #[arg(long)]
        reason: String,
    },
    /// The event log's tamper evidence.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Seal what is due, then walk the hash chain: prints OK, or the first broken link and exits 1.
    Verify,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log_format, &settings.log_level);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let store = Store::connect_lazy_with_timeout(
                &settings.database_url,
                settings.deployment.database_timeout,
            )?;
            settings.prepare_data_dir()?;
            store.migrate().await.context("applying migrations")?;
            println!("Migrations applied.");
            Ok(())
        }
        Command::CreateAdmin { email, name, role } => {
            create_admin(settings, &email, name.as_deref(), &role).await
        }
        Command::CreateApiKey {
            email,
            name,
            permissions,
            tenants,
            networks,
            expires,
        } => {
            let request = KeyRequest {
                email,
                name,
                permissions,
                tenants,
                networks,
                expires,
            };
            create_api_key(settings, request).await
        }
        Command::Recover { email, reason } => recover(settings, &email, &reason).await,
        Command::Audit {
            action: AuditAction::Verify,
        } => audit_verify(settings).await,
    }
}

/// Storage (migrated) and the rules, for a one-shot command: no token service, one hashing slot.
async fn command_core(settings: &Settings) -> anyhow::Result<Core> {
    settings.prepare_data_dir()?;
    let store = Store::connect_lazy_with_timeout(
        &settings.database_url,
        settings.deployment.database_timeout,
    )?;
    store.migrate().await.context("applying migrations")?;
    Ok(Core::new(
        store,
        PasswordService::new(1, 1)?,
        Arc::new(SystemClock),
        &settings.public_url,
        crate::domain::TokenServiceSettings::default(),
    )?)
}

struct KeyRequest {
    email: String,
    name: String,
    permissions: Vec<String>,
    tenants: Vec<String>,
    networks: Vec<String>,
    expires: Option<String>,
}

async fn create_api_key(settings: Settings, request: KeyRequest) -> anyhow::Result<()> {
    let core = command_core(&settings).await?;
    let email = Email::parse(&request.email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let owner = users::by_email(&core, &email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--email: no staff member has this address"))?;
    let mut new = NewApiKey::parse(&request.name, &request.permissions, &owner)?
        .only_from(&request.networks)?;
    if let Some(expires) = &request.expires {
        new = new.expiring_in(expires)?;
    }
    new = new.only_in(&core, &request.tenants).await?;
    let context = RequestContext::default();
    let (_, key) = api_keys::create(&core, &owner, new, Actor::Cli, &context).await?;
    println!("{}", key.expose_secret());
    Ok(())
}

async fn recover(settings: Settings, email: &str, reason: &str) -> anyhow::Result<()> {
    let core = command_core(&settings).await?;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let person = users::by_email(&core, &email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--email: no staff member has this address"))?;
    let link = recovery::start_assisted(
        &core,
        &person,
        Actor::Cli,
        reason,
        &RequestContext::default(),
    )
    .await?;
    eprintln!(
        "Every passkey, recovery code and session of {email} is gone. Give them this link (it works once, for an hour):"
    );
    println!("{}", link.expose_secret());
    Ok(())
}

async fn audit_verify(settings: Settings) -> anyhow::Result<()> {
    let core = command_core(&settings).await?;
    let sealed = audit::seal_pending(&core).await?;
    let waiting = audit::chain_state(&core).await?.waiting;
    match audit::verify(&core, "cli").await? {
        audit::Verdict::Intact { checked } => {
            println!(
                "OK: the event chain is intact ({checked} events checked; {sealed} sealed just now; {waiting} too recent to seal yet)."
            );
            Ok(())
        }
        audit::Verdict::Broken {
            checked,
            position,
            event_id,
            problem,
        } => {
            eprintln!(
                "BROKEN at link {position} (event {event_id}): {problem}. {checked} links before it are intact."
            );
            std::process::exit(1);
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if !settings.is_https() {
        tracing::warn!(
            public_url = %settings.public_url,
            "plain-http development mode: the session cookie is not Secure and has no __Host- prefix, and HSTS is off"
        );
    }
    let public_url = settings.public_url.clone();
    let listen = settings.listen;
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    if let Some(link) = app.setup_link() {
        announce_setup_link(link);
    }
    tracing::info!(%listen, port = app.port(), %public_url, "console listening");
    tokio::spawn(app.drainer().drain_on_signal());
    app.run_until_stopped()
        .await
        .context("server stopped with an error")
}

async fn create_admin(
    settings: Settings,
    email: &str,
    name: Option<&str>,
    role: &str,
) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let role = Role::parse(role)
        .filter(|r| r.is_global())
        .ok_or_else(|| anyhow::anyhow!("--role: superadmin or security"))?;
    let default_name = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let display_name = DisplayName::parse(name.unwrap_or(&default_name))
        .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let password = Password::new(read_password()?).map_err(|e| anyhow::anyhow!("password: {e}"))?;

    let core = command_core(&settings).await?;
    let staff = NewStaff {
        email: email.clone(),
        display_name,
        password,
    };
    let created = if role == Role::Superadmin && !core.store.any_user_exists().await? {
        setup::create_admin_from_cli(&core, staff).await
    } else {
        setup::create_global_staff_from_cli(&core, staff, role).await
    };
    match created {
        Ok(user_id) => {
            println!(
                "Created {} {email} (subject id {user_id}). Sign in at {}login",
                role.as_str(),
                settings.public_url
            );
            Ok(())
        }
        Err(SetupError::AlreadyInitialized) => {
            // Another process bootstrapped at the same moment: this one becomes a further admin.
            bail!("an administrator was created at the same moment; run the command again")
        }
        Err(other) => Err(other.into()),
    }
}

fn read_password() -> anyhow::Result<SecretString> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 12 characters): ")?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        if first != second {
            bail!("the two passwords do not match");
        }
        return Ok(SecretString::from(first));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(SecretString::from(password))
}
