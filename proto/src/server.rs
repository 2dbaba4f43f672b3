//! Reading a snapshot server's `transport` oneof.

use crate::v1::{Server, Subprocess, server::Transport};

impl Server {
    /// The URL of a remote server; `None` for a subprocess server.
    pub fn endpoint(&self) -> Option<&str> {
        match &self.transport {
            Some(Transport::Endpoint(url)) => Some(url),
            _ => None,
        }
    }

    /// What to run for a subprocess server; `None` for a remote one.
    pub fn subprocess(&self) -> Option<&Subprocess> {
        match &self.transport {
            Some(Transport::Subprocess(sub)) => Some(sub),
            _ => None,
        }
    }
}
