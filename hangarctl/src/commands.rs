//! The subcommands.

use std::path::Path;

use anyhow::{Context, bail};
use hangar_proto::v1::admin_service_client::AdminServiceClient;
use hangar_proto::v1::{ApplyRequest, StatusRequest, ValidationErrors};
use prost::Message;
use tonic::transport::Channel;

use crate::cli::{Cli, Command, Format};
use crate::output;

/// Runs one subcommand.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Apply { file } => apply(&cli.control_plane, &file).await,
        Command::Status { output } => status(&cli.control_plane, output).await,
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

async fn status(url: &str, format: Format) -> anyhow::Result<()> {
    let mut client = AdminServiceClient::new(connect(url).await?);
    let status = client
        .status(StatusRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("status failed: {}", s.message()))?
        .into_inner();
    match format {
        Format::Table => print!("{}", output::status_table(&status)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::status_json(&status))?
        ),
    }
    Ok(())
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
