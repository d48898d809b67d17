//! The MQTT bridge (issue 17) against a real broker: Debian's `mosquitto`, started here on a
//! free port (skipped when it is not installed, except in CI, `SMSHUB_CI`), and a real MQTT
//! client (`rumqttc`) on the other side.
//!
//! Events reach their topics, presence is retained, a send over MQTT is a REST send (stored,
//! offered to a phone, answered on its reply topic, not doubled when delivered again, refused
//! with the REST API's codes), and nothing published is lost when the broker or the hub
//! restarts: every event arrives at least once, by its id.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use smshub::mqtt::MqttConfig;
use tokio::sync::mpsc;

use crate::support::{PATIENCE, TestHub, eventually, free_port};

/// How long a test waits for what comes after a broker or hub restart.
const RESTART_PATIENCE: Duration = Duration::from_secs(60);

/// `mosquitto`, if installed; in CI its absence is a failure.
fn mosquitto() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|it| std::env::split_paths(&it).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("mosquitto"))
        .find(|it| it.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("SMSHUB_CI").is_none(),
            "mosquitto is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: mosquitto is not installed");
    }
    found
}

/// A mosquitto broker on a port of its own, persisting its sessions in a directory of its
/// own, so that it can be stopped and started again on the same port and state.
struct Broker {
    binary: PathBuf,
    port: u16,
    /// A second listener, with TLS (certificate of a CA of the test's own).
    tls_port: Option<u16>,
    /// Only this user (name, password) may connect; anonymous clients are refused.
    user: Option<(String, String)>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    async fn start() -> Option<Broker> {
        Broker::start_with(false).await
    }

    /// A broker that also listens with TLS; `ca.pem` in [`Broker::ca_file`].
    async fn start_with(tls: bool) -> Option<Broker> {
        let binary = mosquitto()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let tls_port = tls.then(|| {
            let (ca, cert, key) = crate::tls::certificate("mqtt");
            std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
            std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
            std::fs::write(dir.path().join("key.pem"), key).unwrap();
            free_port()
        });
        let mut broker = Broker {
            binary,
            port: free_port(),
            tls_port,
            user: None,
            dir,
            child: None,
        };
        broker.up().await;
        Some(broker)
    }

    /// A broker that lets in only `user` with `password` (a mosquitto password file).
    async fn start_with_user(user: &str, password: &str) -> Option<Broker> {
        let binary = mosquitto()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let passwd = binary.with_file_name("mosquitto_passwd");
        let passwd = if passwd.exists() {
            passwd
        } else {
            PathBuf::from("mosquitto_passwd")
        };
        let status = Command::new(passwd)
            .args(["-b", "-c"])
            .arg(dir.path().join("passwd"))
            .args([user, password])
            .status()
            .expect("mosquitto_passwd runs");
        assert!(status.success(), "mosquitto_passwd");
        let mut broker = Broker {
            binary,
            port: free_port(),
            tls_port: None,
            user: Some((user.into(), password.into())),
            dir,
            child: None,
        };
        broker.up().await;
        Some(broker)
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn config(&self) -> PathBuf {
        let path = self.dir.path().join("mosquitto.conf");
        // As root mosquitto would become the `mosquitto` user, who cannot write here.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root\n"
        } else {
            ""
        };
        let dir = self.dir.path().display();
        let anonymous = if self.user.is_some() {
            format!("false\npassword_file {dir}/passwd")
        } else {
            "true".to_string()
        };
        let mut text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous {anonymous}\npersistence true\n\
             persistence_location {dir}/\nautosave_interval 1\nautosave_on_changes true\n\
             max_queued_messages 100000\nmax_inflight_messages 20\n{user}",
            port = self.port,
        );
        if let Some(port) = self.tls_port {
            text.push_str(&format!(
                "listener {port} 127.0.0.1\ncafile {dir}/ca.pem\ncertfile {dir}/cert.pem\n\
                 keyfile {dir}/key.pem\n"
            ));
        }
        std::fs::write(&path, text).expect("mosquitto.conf");
        path
    }

    /// Starts the broker and waits until it listens.
    async fn up(&mut self) {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.config())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        for port in [Some(self.port), self.tls_port].into_iter().flatten() {
            eventually("mosquitto listening", || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
            })
            .await;
        }
    }

    /// Stops the broker (SIGTERM: it saves its sessions) and waits until it has.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One message a client received.
#[derive(Debug, Clone)]
struct Received {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// A real MQTT client with a session the broker keeps (`clean_session = false`), that
/// subscribes to `topics` at each connection, reconnects whenever it loses the broker, and
/// hands on every message it receives.
struct Client {
    client: AsyncClient,
    received: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(broker: &Broker, id: &str, topics: &[&str]) -> Client {
        let mut options = MqttOptions::new(id, "127.0.0.1", broker.port);
        if let Some((user, password)) = &broker.user {
            options.set_credentials(user, password);
        }
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        let (tx, received) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        let topics: Vec<String> = topics.iter().map(ToString::to_string).collect();
        let subscriber = client.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for topic in &topics {
                            let _ = subscriber.try_subscribe(topic, QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(it))) => {
                        let _ = tx.send(Received {
                            topic: it.topic.clone(),
                            payload: it.payload.to_vec(),
                            retain: it.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(PATIENCE, subscribed.recv())
            .await
            .expect("the client subscribed");
        Client {
            client,
            received,
            task,
        }
    }

    /// The next message, on any topic.
    async fn next(&mut self, patience: Duration) -> Received {
        tokio::time::timeout(patience, self.received.recv())
            .await
            .expect("a message in time")
            .expect("the client runs")
    }

    /// The next message on `topic`, skipping others.
    async fn next_on(&mut self, topic: &str) -> Received {
        loop {
            let it = self.next(PATIENCE).await;
            if it.topic == topic {
                return it;
            }
        }
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hub with the MQTT bridge to `broker`, sends acting under its test key.
async fn hub_with_bridge(broker: &Broker) -> TestHub {
    let hub = TestHub::spawn().await;
    let port = broker.port;
    let hub = hub
        .restart_with(|config, key| {
            let mut mqtt = MqttConfig::new("127.0.0.1", port);
            mqtt.send_key = Some(key.to_string());
            config.mqtt = Some(mqtt);
        })
        .await;
    bridge_started(&hub, "smshub").await;
    hub
}

/// Waits until the bridge `client_id` has its position: a new bridge starts at the end of
/// the log, so what is committed before it has one is not its to publish.
async fn bridge_started(hub: &TestHub, client_id: &str) {
    let consumer = format!("mqtt:{client_id}");
    eventually("the bridge's starting position", || {
        let consumer = consumer.clone();
        async move { hub.store.consumer_position(&consumer).await.ok().flatten() }
    })
    .await;
}

/// Waits until the bridge has stored a position at or past `id`.
async fn position_reaches(hub: &TestHub, id: i64) {
    let store = hub.store.clone();
    eventually("the bridge's stored position", || {
        let store = store.clone();
        async move {
            let position = store.consumer_position("mqtt:smshub").await.ok()??;
            (position >= id).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn events_reach_their_topics_and_presence_is_retained() {
    let Some(broker) = Broker::start().await else {
        return;
    };
    let mut client = Client::connect(&broker, "t-events", &["smshub/events/#"]).await;
    let hub = hub_with_bridge(&broker).await;

    let phone = hub.phone("p1", 80, false, -60, 4).await;
    let online = client.next_on("smshub/events/device.online").await.json();
    let device = online["device_id"].as_str().expect("device_id").to_string();
    assert!(online["id"].as_i64().unwrap() > 0, "{online}");
    assert_eq!(online["type"], "device.online");

    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "hi"}))
        .await;
    let queued = client.next_on("smshub/events/message.queued").await.json();
    assert_eq!(queued["message_id"], id.as_str());
    // The same JSON as the log's event, id and all.
    let stored = hub
        .store
        .events()
        .get(queued["id"].as_i64().unwrap())
        .await
        .unwrap()
        .expect("the event is in the log");
    assert_eq!(queued, serde_json::to_value(&stored).unwrap());

    // A client that comes later gets the device's presence, retained.
    let topic = format!("smshub/devices/{device}/presence");
    let mut later = Client::connect(&broker, "t-presence", &["smshub/devices/+/presence"]).await;
    let presence = later.next_on(&topic).await;
    assert!(presence.retain);
    assert_eq!(presence.payload, b"online");

    phone.drop_connection();
    let offline = later.next_on(&topic).await;
    assert_eq!(offline.payload, b"offline");
    drop(later);
    let mut latest = Client::connect(&broker, "t-presence-2", &[&topic]).await;
    let presence = latest.next_on(&topic).await;
    assert!(presence.retain);
    assert_eq!(presence.payload, b"offline");
}

#[tokio::test]
async fn a_send_over_mqtt_is_a_rest_send_and_a_repeat_is_not_doubled() {
    let Some(broker) = Broker::start().await else {
        return;
    };
    let hub = hub_with_bridge(&broker).await;
    let mut phone = hub.phone("p1", 80, false, -60, 4).await;
    let mut client = Client::connect(
        &broker,
        "t-send",
        &["smshub/send/reply/#", "apps/mine/answers"],
    )
    .await;

    let send = json!({"id": "order-17", "phone_number": "+14155552671", "message": "hi"});
    client.publish("smshub/send", send.to_string()).await;
    let reply = client.next_on("smshub/send/reply/order-17").await.json();
    assert_eq!(reply["id"], "order-17");
    assert_eq!(reply["status"], 202, "{reply}");
    let id = reply["body"]["id"]
        .as_str()
        .expect("message id")
        .to_string();
    assert_eq!(phone.expect_offer().await.id, id);
    phone.accept(&id).await;

    // Delivered again (as a broker does without a PUBACK): the same message, not a second.
    client.publish("smshub/send", send.to_string()).await;
    let again = client.next_on("smshub/send/reply/order-17").await.json();
    assert_eq!(again["status"], 200, "{again}");
    assert_eq!(again["body"]["id"], id.as_str());
    assert_eq!(hub.message_count().await, 1);

    // Bad sends: the REST API's codes, nothing stored.
    client.publish("smshub/send", "{not json").await;
    let bad = client.next_on("smshub/send/reply").await.json();
    assert_eq!(bad["status"], 400);
    assert_eq!(bad["body"]["error"]["code"], "invalid_json", "{bad}");
    let refused = json!({
        "id": "o-2", "phone_number": "12", "message": "hi", "reply_to": "apps/mine/answers"
    });
    client.publish("smshub/send", refused.to_string()).await;
    let bad = client.next_on("apps/mine/answers").await.json();
    assert_eq!(bad["id"], "o-2");
    assert_eq!(bad["status"], 400);
    assert_eq!(
        bad["body"]["error"]["code"], "invalid_phone_number",
        "{bad}"
    );
    client
        .publish("smshub/send", json!({"message": "no id"}).to_string())
        .await;
    let bad = client.next_on("smshub/send/reply").await.json();
    assert_eq!(bad["body"]["error"]["code"], "missing_id", "{bad}");
    // The same id for another request: the REST API's conflict.
    let other = json!({"id": "order-17", "phone_number": "+14155552672", "message": "hi"});
    client.publish("smshub/send", other.to_string()).await;
    let conflict = client.next_on("smshub/send/reply/order-17").await.json();
    assert_eq!(conflict["status"], 409, "{conflict}");
    assert_eq!(conflict["body"]["error"]["code"], "idempotency_conflict");
    assert_eq!(hub.message_count().await, 1);
}

/// The message ids of `message.queued` events received until every one of `ids` came, and
/// how many arrived more than once.
async fn collect_queued(client: &mut Client, ids: &HashSet<String>) -> usize {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut found = HashSet::new();
    while !ids.is_subset(&found) {
        let it = client.next(RESTART_PATIENCE).await;
        let event = it.json();
        *seen
            .entry(event["id"].as_i64().expect("event id"))
            .or_default() += 1;
        if let Some(message) = event["message_id"].as_str() {
            found.insert(message.to_string());
        }
    }
    seen.values().filter(|it| **it > 1).count()
}

#[tokio::test]
async fn a_broker_restart_while_events_flow_loses_none() {
    let Some(mut broker) = Broker::start().await else {
        return;
    };
    let mut client = Client::connect(&broker, "t-restart", &["smshub/events/message.queued"]).await;
    let hub = hub_with_bridge(&broker).await;

    let mut ids = HashSet::new();
    for round in 0..60 {
        if round == 20 {
            broker.down();
        }
        if round == 40 {
            broker.up().await;
        }
        let id = hub
            .send_sms(json!({"phone_number": "+14155552671", "message": format!("n{round}")}))
            .await;
        ids.insert(id);
    }
    let duplicates = collect_queued(&mut client, &ids).await;
    eprintln!("60 events across a broker restart, all received; {duplicates} duplicated");
    position_reaches(&hub, hub.store.events().last_id()).await;
}

#[tokio::test]
async fn a_restarted_hub_resumes_from_its_stored_position() {
    let Some(mut broker) = Broker::start().await else {
        return;
    };
    let mut client = Client::connect(&broker, "t-resume", &["smshub/events/message.queued"]).await;
    let hub = hub_with_bridge(&broker).await;
    let first = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "before"}))
        .await;
    let event = client.next_on("smshub/events/message.queued").await.json();
    assert_eq!(event["message_id"], first.as_str());
    let before = event["id"].as_i64().unwrap();
    position_reaches(&hub, before).await;

    // The broker goes away; events are committed that the bridge cannot publish; the hub
    // stops and starts again; then the broker comes back.
    broker.down();
    let mut ids = HashSet::new();
    for round in 0..10 {
        let id = hub
            .send_sms(json!({"phone_number": "+14155552671", "message": format!("n{round}")}))
            .await;
        ids.insert(id);
    }
    let stored = hub
        .store
        .consumer_position("mqtt:smshub")
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored < hub.store.events().last_id(),
        "nothing was acknowledged"
    );
    let hub = hub.restart().await;
    broker.up().await;
    collect_queued(&mut client, &ids).await;
    position_reaches(&hub, hub.store.events().last_id()).await;
}

#[tokio::test]
async fn the_bridge_speaks_tls_to_a_broker_of_a_private_ca() {
    let Some(broker) = Broker::start_with(true).await else {
        return;
    };
    let mut client = Client::connect(&broker, "t-tls", &["smshub/events/#"]).await;
    let args = smshub::mqtt::MqttArgs {
        mqtt_url: Some(format!("mqtts://localhost:{}", broker.tls_port.unwrap())),
        mqtt_ca_file: Some(broker.ca_file()),
        mqtt_prefix: "smshub".into(),
        mqtt_client_id: "smshub-tls".into(),
        ..smshub::mqtt::MqttArgs::default()
    };
    let mqtt = args
        .config()
        .expect("a valid configuration")
        .expect("a bridge");
    let hub = TestHub::spawn()
        .await
        .restart_with(|config, _| config.mqtt = Some(mqtt))
        .await;
    bridge_started(&hub, "smshub-tls").await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "over TLS"}))
        .await;
    let queued = client.next_on("smshub/events/message.queued").await.json();
    assert_eq!(queued["message_id"], id.as_str());

    // A broker whose certificate the CA file does not vouch for gets nothing.
    let (other_ca, _, _) = crate::tls::certificate("other");
    let other = broker.dir.path().join("other.pem");
    std::fs::write(&other, other_ca).unwrap();
    let args = smshub::mqtt::MqttArgs {
        mqtt_ca_file: Some(other),
        mqtt_client_id: "smshub-untrusted".into(),
        ..args
    };
    let untrusted = args.config().unwrap().unwrap();
    let hub = hub
        .restart_with(|config, _| config.mqtt = Some(untrusted))
        .await;
    bridge_started(&hub, "smshub-untrusted").await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "not trusted"}))
        .await;
    // The hub goes on serving; the first bridge is gone, the second cannot connect.
    assert_eq!(hub.message_count().await, 2);
    let position = hub
        .store
        .consumer_position("mqtt:smshub-untrusted")
        .await
        .unwrap();
    assert!(
        position.is_some_and(|it| it < hub.store.events().last_id()),
        "{id}"
    );
}

/// A broker that refuses anonymous clients: the bridge logs in with `--mqtt-username` and
/// `--mqtt-password`; with a wrong password it gets nothing through and the hub goes on.
#[tokio::test]
async fn the_bridge_logs_in_with_a_user_and_password() {
    let Some(broker) = Broker::start_with_user("hub", "s3cret-pass").await else {
        return;
    };
    let mut client = Client::connect(&broker, "t-user", &["smshub/events/#"]).await;
    let config = |client_id: &str, password: &str| {
        smshub::mqtt::MqttArgs {
            mqtt_url: Some(format!("mqtt://127.0.0.1:{}", broker.port)),
            mqtt_username: Some("hub".into()),
            mqtt_password: Some(password.into()),
            mqtt_prefix: "smshub".into(),
            mqtt_client_id: client_id.into(),
            ..smshub::mqtt::MqttArgs::default()
        }
        .config()
        .expect("a valid configuration")
        .expect("a bridge")
    };
    let good = config("smshub-user", "s3cret-pass");
    let hub = TestHub::spawn()
        .await
        .restart_with(|it, _| it.mqtt = Some(good))
        .await;
    bridge_started(&hub, "smshub-user").await;
    let id = hub
        .send_sms(json!({"phone_number": "+14155552671", "message": "logged in"}))
        .await;
    let queued = client.next_on("smshub/events/message.queued").await.json();
    assert_eq!(queued["message_id"], id.as_str());

    let bad = config("smshub-wrong", "not-the-password");
    let hub = hub.restart_with(|it, _| it.mqtt = Some(bad)).await;
    bridge_started(&hub, "smshub-wrong").await;
    hub.send_sms(json!({"phone_number": "+14155552671", "message": "refused"}))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hub.message_count().await, 2);
    let position = hub
        .store
        .consumer_position("mqtt:smshub-wrong")
        .await
        .unwrap();
    assert!(
        position.is_none_or(|it| it < hub.store.events().last_id()),
        "{position:?}"
    );
}
