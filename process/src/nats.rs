//! The NATS connection every bmon process opens the same way.
//!
//! - **Servers**: one URL or a comma-separated list (the servers of a cluster): the client
//!   starts on one of them and moves to another when its server goes away; it also learns the
//!   rest of the cluster from the servers themselves.
//! - **Who**: user and password, a credentials file (JWT and nkey), or an nkey seed file
//!   (`SU...`): agents should use the latter two, so no password sits in their config.
//! - **TLS**: the operator's CA (to trust the servers), and a client certificate and key when
//!   the servers verify clients (`verify: true`). A `tls://` URL, or any of these files,
//!   requires TLS.
//! - **Inbox**: replies (publish acknowledgements, pull deliveries, API answers) come to
//!   `_INBOX_<user>.>`, which the server lets only that user read (`nats/server.conf`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, ServerAddr};
use serde::{Deserialize, Serialize};

use crate::Secret;

/// TLS files of a NATS client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM file of the CA that signed the servers' certificates (else the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, when the servers verify clients.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Everything a connection needs.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// One URL, or a comma-separated list (a cluster).
    pub urls: String,
    /// Client name, shown by the server (`bmon-agent-node0`, `bmon-consumer ch-writer`).
    pub name: String,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Secret,
    /// A `.creds` file (JWT and nkey seed).
    pub credentials_file: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`).
    pub nkey_seed_file: Option<PathBuf>,
    /// TLS files.
    pub tls: Option<TlsFiles>,
    /// The user whose inbox prefix replies use (`_INBOX_<inbox_user>`).
    pub inbox_user: String,
    /// Keep trying in the background when no server answers at first, and forever after a
    /// disconnection (the agent, which spools meanwhile). Otherwise the first attempt must
    /// succeed within the timeout.
    pub keep_trying: bool,
}

/// Why a connection could not be opened. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A URL of the list does not parse.
    #[error("NATS server address {url:?} is not a nats://, tls:// or host:port address: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// The parser's words.
        reason: String,
    },
    /// The credentials file cannot be read.
    #[error("cannot read the NATS credentials file {}: {reason}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The nkey seed file cannot be read or holds no seed.
    #[error("cannot use the NATS nkey seed file {}: {reason}", path.display())]
    Nkey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A TLS file is missing.
    #[error("NATS TLS file {} does not exist (nats.tls.*_file)", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
    },
    /// No server accepted the connection.
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect {
        /// The servers tried.
        urls: String,
        /// The client's words.
        reason: String,
    },
}

/// An envelope as a NATS message: its subject, its headers (`Nats-Msg-Id` = the event id, so
/// JetStream drops a re-send within the duplicate window; `Bmon-Kind`, `Bmon-Node`,
/// `Content-Type`) and its MessagePack payload.
pub fn message(
    env: &schema::Envelope,
) -> Result<(String, async_nats::HeaderMap, bytes::Bytes), schema::Error> {
    let payload = env.encode()?;
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in env.headers() {
        headers.insert(name, value.as_str());
    }
    Ok((env.subject(), headers, bytes::Bytes::from(payload)))
}

/// The servers of a comma-separated list.
pub fn server_addrs(urls: &str) -> Result<Vec<ServerAddr>, ConnectError> {
    let list: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if list.is_empty() {
        return Err(ConnectError::BadUrl {
            url: urls.to_string(),
            reason: "no address given".into(),
        });
    }
    list.into_iter()
        .map(|u| {
            u.parse::<ServerAddr>().map_err(|e| ConnectError::BadUrl {
                url: u.to_string(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Opens the connection.
pub async fn connect(c: &Connect) -> Result<Client, ConnectError> {
    let addrs = server_addrs(&c.urls)?;
    // The TLS stack's crypto: ring, chosen here once for the process, so that a build in which
    // another crate also enables aws-lc-rs cannot leave rustls unable to pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut opts = match &c.credentials_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| ConnectError::Credentials {
                path: path.clone(),
                reason: e.to_string(),
            })?,
        None => ConnectOptions::new(),
    };
    if let Some(path) = &c.nkey_seed_file {
        opts = opts.nkey(read_seed(path)?);
    }
    if let Some(user) = &c.user {
        opts = opts.user_and_password(user.clone(), c.password.expose().to_string());
    }
    let tls_url = addrs.iter().any(|a| a.tls_required());
    if let Some(tls) = &c.tls {
        if let Some(ca) = &tls.ca_file {
            opts = opts.add_root_certificates(existing(ca)?);
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => {
                opts = opts.add_client_certificate(existing(cert)?, existing(key)?);
            }
            (Some(only), None) | (None, Some(only)) => {
                return Err(ConnectError::TlsFile {
                    path: only.with_extension("(its pair: set both cert_file and key_file)"),
                });
            }
            (None, None) => {}
        }
        opts = opts.require_tls(true);
    } else if tls_url {
        opts = opts.require_tls(true);
    }
    opts = opts
        .name(&c.name)
        .custom_inbox_prefix(schema::subject::inbox_prefix(&c.inbox_user))
        .connection_timeout(Duration::from_secs(5));
    if c.keep_trying {
        opts = opts
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * attempts as u64).min(2_000))
            })
            .event_callback(|ev| async move {
                match ev {
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                    other => tracing::info!(event = %other, "NATS event"),
                }
            });
    }
    opts.connect(addrs)
        .await
        .map_err(|e| ConnectError::Connect {
            urls: c.urls.clone(),
            reason: error_chain(&e),
        })
}

/// The seed in `path`: the first line starting with `S` (nsc and `nk -gen` write it alone, or
/// inside a creds-like block).
fn read_seed(path: &Path) -> Result<String, ConnectError> {
    let err = |reason: String| ConnectError::Nkey {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with('S') && l.len() > 50 && !l.contains(' '))
        .map(str::to_string)
        .ok_or_else(|| err("no seed (a line starting with SU...) in it".into()))
}

fn existing(path: &Path) -> Result<PathBuf, ConnectError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(ConnectError::TlsFile {
            path: path.to_path_buf(),
        })
    }
}

/// An error with its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_becomes_its_subject_headers_and_payload() {
        let env = schema::Envelope::new(
            schema::NodeId::new("node3").unwrap(),
            schema::UnixMicros(1_000),
            schema::event::Warning {
                message: "x".into(),
            },
        );
        let (subject, headers, payload) = message(&env).unwrap();
        assert_eq!(subject, "bmon.ev.warning.node3");
        assert_eq!(
            headers
                .get(schema::subject::HEADER_MSG_ID)
                .map(|v| v.to_string()),
            Some(env.id.to_hex())
        );
        assert_eq!(schema::Envelope::decode(&payload).unwrap(), env);
    }

    #[test]
    fn a_list_of_servers_is_a_cluster_and_a_bad_entry_is_named() {
        let addrs =
            server_addrs("nats://10.0.0.1:4222, nats://10.0.0.2:4222,tls://h:4223").unwrap();
        assert_eq!(addrs.len(), 3);
        assert!(addrs[2].tls_required());
        let err = server_addrs("nats://a:4222,http://b")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://b"), "{err}");
        assert!(server_addrs(" , ").is_err());
    }

    #[test]
    fn a_seed_file_without_a_seed_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("bmon-seed-{}", std::process::id()));
        std::fs::write(&dir, "not a seed\n").unwrap();
        let err = read_seed(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&dir.display().to_string()) && err.contains("no seed"),
            "{err}"
        );
        let seed = format!("SUA{}", "B".repeat(55));
        std::fs::write(
            &dir,
            format!("-----BEGIN USER NKEY SEED-----\n{seed}\n------END------\n"),
        )
        .unwrap();
        assert_eq!(read_seed(&dir).unwrap(), seed);
        let _ = std::fs::remove_file(&dir);
    }

    #[tokio::test]
    async fn a_missing_tls_file_is_named_before_connecting() {
        let c = Connect {
            urls: "nats://127.0.0.1:1".into(),
            tls: Some(TlsFiles {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..TlsFiles::default()
            }),
            ..Connect::default()
        };
        let err = connect(&c).await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
