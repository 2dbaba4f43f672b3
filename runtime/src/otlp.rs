//! OpenTelemetry traces over OTLP, shared by the control plane and the data
//! plane: where they go ([`OtlpSettings`], from `--otlp-endpoint` or the
//! standard `OTEL_EXPORTER_OTLP_*` variables; off when neither names an
//! endpoint) and the tracer provider that batches spans to it ([`Traces`]).
//!
//! Spans are handed to the SDK's batch processor, which queues them in a
//! bounded channel (`OTEL_BSP_MAX_QUEUE_SIZE`, 2,048 by default) and exports
//! from its own thread: a call only ever pays for building its spans, and a
//! slow or absent collector costs dropped spans, never slower calls. The
//! exporters speak through tokio (tonic for gRPC, reqwest for HTTP), which
//! that thread does not have, so each export runs on the process's runtime
//! (`OnRuntime`).
//!
//! The SDK reads the rest of the standard variables itself: the sampler
//! (`OTEL_TRACES_SAMPLER`, parent-based always-on by default), batch sizes
//! (`OTEL_BSP_*`), `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`,
//! exporter headers and timeouts (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`).

use std::sync::Arc;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (a collector's port 4317).
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (a collector's port 4318), as
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` asks.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

impl std::fmt::Display for OtlpProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        })
    }
}

impl OtlpProtocol {
    /// The protocol a standard variable's value names.
    fn from_env_value(value: &str) -> Option<Self> {
        match value.trim() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            _ => None,
        }
    }
}

/// The command-line options of traces, the same for every Hangar process.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OtlpArgs {
    /// Send OpenTelemetry traces to this OTLP collector (e.g.
    /// http://127.0.0.1:4317). Without it, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    /// or OTEL_EXPORTER_OTLP_ENDPOINT; with none of them, no traces.
    #[arg(long, value_name = "URL", value_parser = collector_url)]
    pub otlp_endpoint: Option<String>,
    /// The OTLP transport; default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
    /// OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<OtlpProtocol>,
}

/// An http(s) URL with a host, as the exporters need it.
fn collector_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "'{text}' is not an http:// or https:// URL (e.g. http://127.0.0.1:4317)"
        )),
    }
}

/// Where traces go, once resolved from the options and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The collector named on the command line; `None` lets the exporter
    /// read the standard variables (one of which is set).
    pub endpoint: Option<String>,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
    pub service_name: String,
}

impl OtlpSettings {
    /// Traces for `service_name` as `args` and the environment ask, or
    /// `None` (no traces) when neither names a collector; an error for a
    /// protocol variable naming one that is not offered.
    pub fn resolve(args: &OtlpArgs, service_name: &str) -> Result<Option<Self>, OtlpError> {
        Self::resolve_with(args, service_name, |name| std::env::var(name).ok())
    }

    /// [`OtlpSettings::resolve`] reading variables through `var`.
    fn resolve_with(
        args: &OtlpArgs,
        service_name: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, OtlpError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let from_env = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .is_some();
        let endpoint = args.otlp_endpoint.clone().filter(|e| !e.trim().is_empty());
        if endpoint.is_none() && !from_env {
            return Ok(None);
        }
        let protocol = match args.otlp_protocol {
            Some(protocol) => protocol,
            None => match [
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ]
            .into_iter()
            .find_map(|name| set(name).map(|value| (name, value)))
            {
                None => OtlpProtocol::default(),
                Some((name, value)) => OtlpProtocol::from_env_value(&value).ok_or_else(|| {
                    OtlpError(format!(
                        "{name}={value} is not offered; use grpc or http/protobuf"
                    ))
                })?,
            },
        };
        Ok(Some(Self {
            endpoint,
            protocol,
            service_name: service_name.to_owned(),
        }))
    }
}

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot send traces over OTLP: {0}")]
pub struct OtlpError(String);

/// A tracer provider exporting to the collector in batches; spans made
/// from [`Traces::tracer`] go there. Flush it with [`Traces::shutdown`].
#[derive(Debug, Clone)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Starts exporting as `settings` say. Call it within the tokio runtime
    /// the exports are to run on.
    pub fn start(settings: &OtlpSettings) -> Result<Self, OtlpError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| OtlpError("no tokio runtime to export from".to_owned()))?;
        let exporter = match settings.protocol {
            OtlpProtocol::Grpc => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                builder.build()
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(http_traces_url(endpoint));
                }
                builder.build()
            }
        }
        .map_err(|e| OtlpError(e.to_string()))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(settings.service_name.clone());
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(OnRuntime {
                exporter: Arc::new(exporter),
                runtime,
            })
            .with_resource(resource.build())
            .build();
        Ok(Self { provider })
    }

    /// A tracer for spans of `scope` (the crate that makes them).
    pub fn tracer(&self, scope: &'static str) -> SdkTracer {
        self.provider.tracer(scope)
    }

    /// Exports what is queued and stops. Blocks until the batch thread is
    /// done, so it runs on a blocking thread.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(err)) = done {
            tracing::warn!(error = %err, "traces not all sent at shutdown");
        }
    }
}

/// An OTLP/HTTP URL for traces: a bare collector address gets the signal
/// path, as the standard variables' base URL does; a URL with a path is
/// used as it is.
fn http_traces_url(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(url) if url.path() == "/" || url.path().is_empty() => {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        }
        _ => endpoint.to_owned(),
    }
}

/// An exporter whose exports run on a tokio runtime: the batch processor
/// calls it from a thread without one, where tonic and reqwest cannot run.
#[derive(Debug)]
struct OnRuntime<E> {
    exporter: Arc<E>,
    runtime: tokio::runtime::Handle,
}

impl<E: SpanExporter + 'static> SpanExporter for OnRuntime<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let exporter = self.exporter.clone();
        let export = self
            .runtime
            .spawn(async move { exporter.export(batch).await });
        match export.await {
            Ok(result) => result,
            Err(err) => Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                err.to_string(),
            )),
        }
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Only before the first export, while nothing else holds it.
        if let Some(exporter) = Arc::get_mut(&mut self.exporter) {
            exporter.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &OtlpArgs, vars: &[(&str, &str)]) -> Option<OtlpSettings> {
        OtlpSettings::resolve_with(args, "svc", |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("a protocol offered")
    }

    #[test]
    fn a_protocol_not_offered_is_an_error_naming_the_variable() {
        let vars = |name: &str, name_value: String| {
            OtlpSettings::resolve_with(&OtlpArgs::default(), "svc", move |k| match k {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://c:4318".to_owned()),
                k if k == name => Some(name_value.clone()),
                _ => None,
            })
        };
        let err = vars("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()).unwrap_err();
        assert!(
            err.to_string()
                .contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/json"),
            "{err}"
        );
        assert!(collector_url("not a url").is_err());
        assert!(collector_url("ftp://c:1").is_err());
        assert!(collector_url("http://127.0.0.1:4317").is_ok());
    }

    #[test]
    fn traces_are_off_unless_a_collector_is_named() {
        assert_eq!(resolve(&OtlpArgs::default(), &[]), None);
        assert_eq!(
            resolve(
                &OtlpArgs::default(),
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]
            ),
            None
        );
        let on = resolve(
            &OtlpArgs::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")],
        )
        .expect("on");
        assert_eq!(on.endpoint, None, "the exporter reads the variable itself");
        assert_eq!(on.protocol, OtlpProtocol::Grpc);
    }

    #[test]
    fn the_command_line_wins_over_the_environment() {
        let args = OtlpArgs {
            otlp_endpoint: Some("http://a:4318".to_owned()),
            otlp_protocol: None,
        };
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://b:4317"),
        ];
        let on = resolve(&args, &vars).expect("on");
        assert_eq!(on.endpoint.as_deref(), Some("http://a:4318"));
        assert_eq!(on.protocol, OtlpProtocol::HttpProtobuf);
        let grpc = OtlpArgs {
            otlp_protocol: Some(OtlpProtocol::Grpc),
            ..args
        };
        assert_eq!(
            resolve(&grpc, &vars).expect("on").protocol,
            OtlpProtocol::Grpc
        );
    }

    #[test]
    fn a_bare_http_collector_gets_the_traces_path() {
        assert_eq!(
            http_traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://c:4318/custom/v1/traces"),
            "http://c:4318/custom/v1/traces"
        );
    }
}
