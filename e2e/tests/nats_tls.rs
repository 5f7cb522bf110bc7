//! NATS over TLS with client certificates, and an agent that logs in with an nkey, on a real
//! server run from `nats/server.conf` with its TLS block and nkey user uncommented. The test
//! makes its own CA, server and client certificates.
//!
//! - The consumers' connection (user and password, CA and client certificate) sets up the
//!   streams; the agent's (nkey seed file, CA and client certificate) publishes its own
//!   node's events, and is refused another node's subject.
//! - Without a client certificate, or without trusting the CA, the connection fails with an
//!   error that says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// PEM files of a CA, a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let write = |name: &str, pem: String| {
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "bmon test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "bmon nats");
    let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "bmon agent node2");
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();

    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        server_cert: write("server.pem", server_cert.pem()),
        server_key: write("server-key.pem", server_key.serialize_pem()),
        client_cert: write("client.pem", client_cert.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
    }
}

/// `nats/server.conf` on a loopback port, its TLS block and nkey user uncommented and pointed
/// at the test's files and key.
fn server_conf(dir: &Path, port: u16, pki: &Pki, node2_public: &str) -> PathBuf {
    test_support::shipped_server_conf(dir, port, |shipped| {
        let mut out = Vec::new();
        let mut in_block = false;
        for line in shipped.lines() {
            let t = line.trim_start();
            // The commented blocks to turn on: `#tls {` … `#}` and the nkey user `#{` … `#}`.
            if t == "#tls {" || t == "#{" {
                in_block = true;
            }
            if in_block && t.starts_with('#') {
                out.push(line.replacen('#', "", 1));
                if t == "#}" {
                    in_block = false;
                }
                continue;
            }
            out.push(line.to_string());
        }
        out.join("\n")
            .replace(
                "/etc/bmon/tls/nats-server.pem",
                &pki.server_cert.display().to_string(),
            )
            .replace(
                "/etc/bmon/tls/nats-server-key.pem",
                &pki.server_key.display().to_string(),
            )
            .replace("/etc/bmon/tls/ca.pem", &pki.ca.display().to_string())
            .replace("UNODE2PUBLICKEY", node2_public)
    })
}

const PASSWORDS: [(&str, &str); 3] = [
    ("BMON_CONSUMERS_PASSWORD", "consumers-secret"),
    ("BMON_NODE0_PASSWORD", "node0-secret"),
    ("BMON_NODE1_PASSWORD", "node1-secret"),
];

async fn published(js: &jetstream::Context, subject: &str) -> bool {
    match js.publish(subject.to_string(), "x".into()).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_and_an_nkey_agent_connect_over_tls_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let node2 = nkeys::KeyPair::new_user();
    let seed_file = dir.path().join("node2.nk");
    std::fs::write(&seed_file, format!("{}\n", node2.seed().unwrap())).unwrap();
    let port = test_support::free_port();
    let conf = server_conf(dir.path(), port, &pki, &node2.public_key());
    let _server = test_support::ConfiguredNats::start(&conf, &PASSWORDS, port);
    let url = format!("tls://127.0.0.1:{port}");
    let tls = process::nats::TlsFiles {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
    };

    // The consumers' user sets up the streams over TLS.
    let consumers_nats = consumers::config::NatsConfig {
        url: url.clone(),
        user: Some("bmon".into()),
        password: process::Secret::new("consumers-secret"),
        tls: Some(tls.clone()),
        ..Default::default()
    };
    let admin = consumers::connect_nats(&consumers_nats, "bmon-consumer test")
        .await
        .expect("the consumers connect over TLS");
    let admin = jetstream::new(admin);
    let (defs, _) = {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../nats/streams.toml"),
        )
        .unwrap()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("max_bytes") {
                "max_bytes = 104857600".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
        let f = dir.path().join("streams.toml");
        std::fs::write(&f, &text).unwrap();
        (consumers::definitions::Definitions::load(&f).unwrap(), text)
    };
    consumers::setup::setup_nats(&admin, &defs)
        .await
        .expect("streams and consumers over TLS");

    // The agent of node2 logs in with its nkey, as bmon-agent does.
    let agent_nats = agent::config::NatsConfig {
        url: url.clone(),
        credentials_file: None,
        nkey_seed_file: Some(seed_file.clone()),
        tls: Some(tls.clone()),
    };
    let node = schema::NodeId::new("node2").unwrap();
    let client = agent::publish::connect(&agent_nats, &node)
        .await
        .expect("the agent connects with its nkey over TLS");
    client.flush().await.expect("the agent's connection is up");
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client);
    assert!(
        published(&js, "bmon.ev.tx_seen.node2").await,
        "node2 publishes its own events"
    );
    assert!(
        !published(&js, "bmon.ev.tx_seen.node1").await,
        "node2's key cannot publish node1's events"
    );

    // No client certificate: the server refuses the connection (verify: true).
    let no_cert = process::nats::Connect {
        urls: url.clone(),
        user: Some("bmon".into()),
        password: process::Secret::new("consumers-secret"),
        tls: Some(process::nats::TlsFiles {
            ca_file: Some(pki.ca.clone()),
            ..Default::default()
        }),
        inbox_user: "bmon".into(),
        ..Default::default()
    };
    assert!(
        connected(&no_cert).await.is_err(),
        "a client without a certificate is refused"
    );
    // Not trusting the CA: the client refuses the server.
    let untrusted = process::nats::Connect {
        tls: Some(process::nats::TlsFiles {
            ca_file: None,
            ..tls.clone()
        }),
        ..no_cert.clone()
    };
    let err = connected(&untrusted).await.unwrap_err();
    assert!(
        err.contains("127.0.0.1") && err.to_lowercase().contains("cert"),
        "the error names the server and the certificate problem: {err}"
    );
    // Plain text to a TLS server fails too.
    let plain = process::nats::Connect {
        urls: format!("nats://127.0.0.1:{port}"),
        tls: None,
        ..no_cert
    };
    assert!(connected(&plain).await.is_err());
}

/// Connects and round-trips a flush (a server may close a refused TLS client only after the
/// handshake).
async fn connected(c: &process::nats::Connect) -> Result<(), String> {
    let client = process::nats::connect(c).await.map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(3), client.flush())
        .await
        .map_err(|_| "flush timed out".to_string())?
        .map_err(|e| e.to_string())
}
