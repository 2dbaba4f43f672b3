//! nginx as a plain reverse proxy over the same backends, for reference:
//! what a well-tuned HTTP proxy costs on this machine.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// A running nginx, stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    /// Its listen address.
    pub addr: SocketAddr,
    child: Child,
    binary: &'static str,
    conf: std::path::PathBuf,
}

impl Nginx {
    /// The nginx binary, if installed.
    pub fn find() -> Option<&'static str> {
        ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
    }

    /// Starts nginx (one worker per core, keep-alive to the backends,
    /// no buffering) proxying `/mcp` round robin to `backends`. The
    /// client's `Host` goes through, as MCP servers that guard against DNS
    /// rebinding (the SDKs' servers) accept only loopback names.
    pub async fn start(
        binary: &'static str,
        dir: &Path,
        backends: &[SocketAddr],
    ) -> std::io::Result<Self> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let servers: String = backends
            .iter()
            .map(|b| format!("    server {b};\n"))
            .collect();
        let config = format!(
            "worker_processes auto;\nerror_log {dir}/error.log warn;\npid {dir}/nginx.pid;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  upstream backends {{\n{servers}    keepalive 128;\n  }}\n\
             server {{\n    listen {addr};\n    location /mcp {{\n      proxy_pass http://backends;\n\
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n\
             proxy_buffering off;\n    }}\n  }}\n}}\n",
            dir = dir.display()
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(Self {
                    addr,
                    child,
                    binary,
                    conf,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(std::io::Error::other("nginx did not start"))
    }

    /// The master process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Nginx {
    /// Stops master and workers; killing only the master would leave the
    /// workers running, so the master gets time to stop them first.
    fn drop(&mut self) {
        let _ = std::process::Command::new(self.binary)
            .arg("-c")
            .arg(&self.conf)
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        for _ in 0..300 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
