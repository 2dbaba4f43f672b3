//! The subcommands.

use std::path::Path;

use anyhow::{Context, bail};
use hangar_proto::auth::Token;
use hangar_proto::client::{ClientConfig, ClientTls, ControlPlaneChannel};
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use std::io::{IsTerminal, Write};

use hangar_proto::v1::{
    ApplyRequest, CreateApiKeyRequest, DeleteApiKeyRequest, ListApiKeysRequest, StatusRequest,
    StatusResponse, ValidationErrors, VersionRequest,
};
use prost::Message;

use crate::cli::{Cli, Command, Create, Credentials, Delete, Format, Get};
use crate::output;

/// Runs one subcommand.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    // Credentials are read only by the commands that call the control
    // plane: `validate` works offline.
    let target = || Target::from_cli(&cli.control_plane, &cli.credentials);
    match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Apply { file, allow_empty } => apply(&target()?, &file, allow_empty).await,
        Command::Status {
            output,
            watch: false,
        } => status(&target()?, output).await,
        Command::Status {
            output,
            watch: true,
        } => watch(&target()?, output).await,
        Command::Get {
            what: Get::Dataplanes { output },
        } => dataplanes(&target()?, output).await,
        Command::Get {
            what: Get::Apikeys { output },
        } => list_api_keys(&target()?, output).await,
        Command::Create {
            what: Create::Apikey { principal, expires },
        } => create_api_key(&target()?, &principal, expires).await,
        Command::Delete {
            what: Delete::Apikey { id },
        } => delete_api_key(&target()?, &id).await,
        Command::Version => version(&target()?).await,
    }
}

/// The control plane to talk to, and how.
struct Target {
    url: String,
    client: ClientConfig,
}

impl Target {
    fn from_cli(url: &str, credentials: &Credentials) -> anyhow::Result<Self> {
        let client = ClientConfig {
            token: Token::from_file_or_env(credentials.token_file.as_deref())?,
            tls: ClientTls::from_files(
                credentials.ca_cert.as_deref(),
                credentials.client_cert.as_deref(),
                credentials.client_key.as_deref(),
            )?,
        };
        Ok(Self {
            url: url.to_owned(),
            client,
        })
    }

    /// What a failed Admin API call says: that the address is not a
    /// control plane at all when plain HTTP answered, else why `what` failed.
    fn failed(&self, what: &str, status: &tonic::Status) -> anyhow::Error {
        if answered_http(status) {
            return anyhow::anyhow!(
                "{} is not a Hangar control plane: it answered plain HTTP, not gRPC ({}); point --control-plane (or HANGAR_CONTROL_PLANE) at the address hangar-control-plane listens on, not a data plane's",
                self.url,
                status.message()
            );
        }
        anyhow::anyhow!("{what} failed: {}", status.message())
    }

    async fn admin(&self) -> anyhow::Result<AdminServiceClient<ControlPlaneChannel>> {
        let channel = hangar_proto::client::connect(&self.url, &self.client).await?;
        Ok(AdminServiceClient::new(channel))
    }
}

fn validate(file: &Path) -> anyhow::Result<()> {
    match hangar_config::load_file(file) {
        Ok(config) => {
            let groups = config.groups().count();
            let servers = config.servers.len() - groups;
            println!(
                "{}: valid ({}, {})",
                file.display(),
                counted(servers, "server"),
                counted(groups, "group")
            );
            Ok(())
        }
        Err(errors) => bail!("{errors}"),
    }
}

/// The control plane, not this command, refuses a config with no servers
/// over one with some (unless `allow_empty`), so every client is held to it.
async fn apply(target: &Target, file: &Path, allow_empty: bool) -> anyhow::Result<()> {
    let yaml =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut client = target.admin().await?;
    let request = ApplyRequest {
        yaml,
        source_name: file.display().to_string(),
        allow_empty,
    };
    match client.apply(request).await {
        Ok(response) => {
            let response = response.into_inner();
            if response.changed {
                println!("applied {} as version {}", file.display(), response.version);
            } else {
                println!(
                    "{} unchanged (version {})",
                    file.display(),
                    response.version
                );
            }
            Ok(())
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            match ValidationErrors::decode(status.details()) {
                Ok(details) if !details.errors.is_empty() => {
                    bail!("{}", output::validation_errors(&details))
                }
                _ => bail!("control plane rejected the config: {}", status.message()),
            }
        }
        Err(status) => Err(target.failed("apply", &status)),
    }
}

async fn fetch_status(target: &Target) -> anyhow::Result<StatusResponse> {
    let mut client = target.admin().await?;
    let status = client
        .status(StatusRequest {})
        .await
        .map_err(|s| target.failed("status", &s))?;
    Ok(status.into_inner())
}

async fn status(target: &Target, format: Format) -> anyhow::Result<()> {
    let status = fetch_status(target).await?;
    match format {
        Format::Table => print!("{}", output::status_table(&status)),
        Format::Json => println!("{}", pretty(&output::status_json(&status))?),
    }
    Ok(())
}

/// Prints every status the control plane sends: a fresh table each time
/// (the screen is cleared on a terminal), or one JSON document per line.
async fn watch(target: &Target, format: Format) -> anyhow::Result<()> {
    let url = &target.url;
    let mut client = target.admin().await?;
    let mut updates = client
        .watch_status(StatusRequest {})
        .await
        .map_err(|s| target.failed("watch", &s))?
        .into_inner();
    let terminal = std::io::stdout().is_terminal();
    loop {
        let status = match updates.message().await {
            Ok(Some(status)) => status,
            Ok(None) => bail!("control plane at {url} ended the watch"),
            Err(s) => bail!("watch of {url} broke: {}", s.message()),
        };
        let mut out = std::io::stdout().lock();
        match format {
            Format::Table if terminal => {
                write!(out, "\x1b[2J\x1b[H{}", output::status_table(&status))?;
            }
            Format::Table => writeln!(out, "{}", output::status_table(&status))?,
            Format::Json => writeln!(out, "{}", output::status_json(&status))?,
        }
        out.flush()?;
    }
}

async fn dataplanes(target: &Target, format: Format) -> anyhow::Result<()> {
    let status = fetch_status(target).await?;
    match format {
        Format::Table => print!("{}", output::dataplanes_table(&status)),
        Format::Json => println!("{}", pretty(&output::dataplanes_json(&status))?),
    }
    Ok(())
}

/// Issues an API key and prints it once, with how to use it.
async fn create_api_key(
    target: &Target,
    principal: &str,
    expires: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let mut client = target.admin().await?;
    let request = CreateApiKeyRequest {
        principal: principal.to_owned(),
        expires_in_ms: expires.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    };
    let made = client
        .create_api_key(request)
        .await
        .map_err(|status| target.failed("create apikey", &status))?
        .into_inner();
    let info = made.info.unwrap_or_default();
    println!("{}", made.key);
    eprintln!(
        "API key {} for {}{}: shown only now; clients send it in the header set by auth.api_key.header_name (X-API-Key by default) or as Authorization: Bearer",
        info.id,
        info.principal,
        match info.expires_unix_ms {
            0 => String::new(),
            ms => format!(", expires {}", output::unix_time(ms)),
        }
    );
    Ok(())
}

async fn list_api_keys(target: &Target, format: Format) -> anyhow::Result<()> {
    let mut client = target.admin().await?;
    let keys = client
        .list_api_keys(ListApiKeysRequest {})
        .await
        .map_err(|status| target.failed("get apikeys", &status))?
        .into_inner()
        .keys;
    match format {
        Format::Table => print!("{}", output::api_keys_table(&keys)),
        Format::Json => println!("{}", pretty(&output::api_keys_json(&keys))?),
    }
    Ok(())
}

async fn delete_api_key(target: &Target, id: &str) -> anyhow::Result<()> {
    let mut client = target.admin().await?;
    client
        .delete_api_key(DeleteApiKeyRequest { id: id.to_owned() })
        .await
        .map_err(|status| target.failed("delete apikey", &status))?;
    println!("deleted API key {id}: every data plane refuses it from its next push");
    Ok(())
}

/// The client's version first, so it shows even when the control plane
/// cannot be asked for its own.
async fn version(target: &Target) -> anyhow::Result<()> {
    let url = &target.url;
    println!("client: {}", env!("CARGO_PKG_VERSION"));
    let mut client = target.admin().await?;
    match client.version(VersionRequest {}).await {
        Ok(response) => {
            let server = response.into_inner();
            println!(
                "server: {} ({}, {})",
                server.version, server.target, server.profile
            );
            Ok(())
        }
        Err(status) if status.code() == tonic::Code::Unimplemented && !answered_http(&status) => {
            bail!("control plane at {url} is too old to report its version")
        }
        Err(status) => Err(target.failed("version", &status)),
    }
}

/// `1 group`, `3 groups`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Whether the server answered without gRPC's trailers: an HTTP server
/// that is not a control plane (a data plane, a proxy).
fn answered_http(status: &tonic::Status) -> bool {
    status.message().starts_with("grpc-status header missing")
}

fn pretty(value: &serde_json::Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)?)
}
