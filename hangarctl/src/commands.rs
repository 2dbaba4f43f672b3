//! The subcommands.

use std::path::Path;

use anyhow::{Context, bail};
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use std::io::{IsTerminal, Write};

use hangar_proto::v1::{
    ApplyRequest, StatusRequest, StatusResponse, ValidationErrors, VersionRequest,
};
use prost::Message;
use tonic::transport::Channel;

use crate::cli::{Cli, Command, Format, Get};
use crate::output;

/// Runs one subcommand.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Apply { file } => apply(&cli.control_plane, &file).await,
        Command::Status {
            output,
            watch: false,
        } => status(&cli.control_plane, output).await,
        Command::Status {
            output,
            watch: true,
        } => watch(&cli.control_plane, output).await,
        Command::Get {
            what: Get::Dataplanes { output },
        } => dataplanes(&cli.control_plane, output).await,
        Command::Version => version(&cli.control_plane).await,
    }
}

fn validate(file: &Path) -> anyhow::Result<()> {
    match hangar_config::load_file(file) {
        Ok(config) => {
            let groups = config.groups().count();
            let remotes = config.remotes().count();
            println!(
                "{}: valid ({remotes} servers, {groups} groups)",
                file.display()
            );
            Ok(())
        }
        Err(errors) => bail!("{errors}"),
    }
}

async fn apply(url: &str, file: &Path) -> anyhow::Result<()> {
    let yaml =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut client = AdminServiceClient::new(connect(url).await?);
    let request = ApplyRequest {
        yaml,
        source_name: file.display().to_string(),
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
        Err(status) => bail!("apply failed: {}", status.message()),
    }
}

async fn fetch_status(url: &str) -> anyhow::Result<StatusResponse> {
    let mut client = AdminServiceClient::new(connect(url).await?);
    let status = client
        .status(StatusRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("status failed: {}", s.message()))?;
    Ok(status.into_inner())
}

async fn status(url: &str, format: Format) -> anyhow::Result<()> {
    let status = fetch_status(url).await?;
    match format {
        Format::Table => print!("{}", output::status_table(&status)),
        Format::Json => println!("{}", pretty(&output::status_json(&status))?),
    }
    Ok(())
}

/// Prints every status the control plane sends: a fresh table each time
/// (the screen is cleared on a terminal), or one JSON document per line.
async fn watch(url: &str, format: Format) -> anyhow::Result<()> {
    let mut client = AdminServiceClient::new(connect(url).await?);
    let mut updates = client
        .watch_status(StatusRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("watch failed: {}", s.message()))?
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

async fn dataplanes(url: &str, format: Format) -> anyhow::Result<()> {
    let status = fetch_status(url).await?;
    match format {
        Format::Table => print!("{}", output::dataplanes_table(&status)),
        Format::Json => println!("{}", pretty(&output::dataplanes_json(&status))?),
    }
    Ok(())
}

/// The client's version first, so it shows even when the control plane
/// cannot be asked for its own.
async fn version(url: &str) -> anyhow::Result<()> {
    println!("client: {}", env!("CARGO_PKG_VERSION"));
    let mut client = AdminServiceClient::new(connect(url).await?);
    match client.version(VersionRequest {}).await {
        Ok(response) => {
            let server = response.into_inner();
            println!(
                "server: {} ({}, {})",
                server.version, server.target, server.profile
            );
            Ok(())
        }
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            bail!("control plane at {url} is too old to report its version")
        }
        Err(status) => bail!("version failed: {}", status.message()),
    }
}

fn pretty(value: &serde_json::Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)?)
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    let endpoint = Channel::from_shared(url.to_owned())
        .map_err(|_| anyhow::anyhow!("invalid control-plane URL '{url}'"))?
        .connect_timeout(std::time::Duration::from_secs(5));
    endpoint.connect().await.map_err(|err| {
        let cause =
            std::error::Error::source(&err).map_or_else(|| err.to_string(), |s| s.to_string());
        anyhow::anyhow!("cannot reach control plane at {url}: {cause}")
    })
}
