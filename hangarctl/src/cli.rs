//! Command-line flags and subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operator CLI for Hangar: validate, apply and inspect config.
#[derive(Debug, Parser)]
#[command(name = "hangarctl", version)]
pub(crate) struct Cli {
    /// Control-plane URL.
    #[arg(
        long,
        global = true,
        env = "HANGAR_CONTROL_PLANE",
        default_value = "http://127.0.0.1:7070"
    )]
    pub(crate) control_plane: String,
    #[command(flatten)]
    pub(crate) credentials: Credentials,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How hangarctl proves itself to the control plane and trusts it back.
#[derive(Debug, Args)]
pub(crate) struct Credentials {
    /// File with the admin token (else `HANGAR_TOKEN`).
    #[arg(long, global = true)]
    pub(crate) token_file: Option<PathBuf>,
    /// PEM CA to trust for an https:// control plane instead of the system roots.
    #[arg(long, global = true)]
    pub(crate) ca_cert: Option<PathBuf>,
    /// PEM client certificate, when the control plane asks for one; needs --client-key.
    #[arg(long, global = true, requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, global = true, requires = "client_cert")]
    pub(crate) client_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a config file offline; prints every error with file:line:column.
    Validate {
        /// The config file.
        file: PathBuf,
    },
    /// Validate a config file, store it as a new version and push it to every data plane.
    Apply {
        /// The config file.
        file: PathBuf,
        /// Apply it even if it has no servers while some are in force, which
        /// removes every server from every data plane.
        #[arg(long)]
        allow_empty: bool,
    },
    /// Show servers, groups and data planes with their health.
    Status {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
        output: Format,
        /// Keep following: print the status again whenever it changes (Ctrl-C stops).
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// List resources.
    Get {
        #[command(subcommand)]
        what: Get,
    },
    /// Make resources.
    Create {
        #[command(subcommand)]
        what: Create,
    },
    /// Remove resources.
    Delete {
        #[command(subcommand)]
        what: Delete,
    },
    /// Print the version of hangarctl and of the control plane.
    Version,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Get {
    /// The data planes: state, acked config version, staleness.
    #[command(alias = "dataplane", alias = "dp")]
    Dataplanes {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// The API keys of MCP clients (ids and principals, never the keys).
    #[command(alias = "apikey")]
    Apikeys {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Create {
    /// An API key for MCP clients of every data plane; printed once.
    Apikey {
        /// Who the key speaks for, e.g. service:my-app.
        #[arg(long)]
        principal: String,
        /// How long it is valid: 30d, 12h, 90m, 45s; forever when left out.
        #[arg(long, value_parser = lifetime)]
        expires: Option<std::time::Duration>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Delete {
    /// Revokes an API key on every data plane.
    Apikey {
        /// The key's id, as `get apikeys` lists it.
        id: String,
    },
}

/// `30d`, `12h`, `90m` or `45s`.
fn lifetime(text: &str) -> Result<std::time::Duration, String> {
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "'{text}' is not a lifetime such as 30d, 12h, 90m or 45s"
            ));
        }
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n.saturating_mul(seconds))),
        _ => Err(format!(
            "'{text}' is not a lifetime such as 30d, 12h, 90m or 45s"
        )),
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Human-readable columns.
    Table,
    /// One JSON document.
    Json,
}
