//! The bridge's connection loop: connect to the broker, publish the log from the stored
//! position, take sends, and when the broker goes away start again from the acknowledged
//! position after a growing pause.
//!
//! One connection at a time, each with its own client, event loop and [`Inflight`]: what was
//! in flight when a connection broke is published again on the next (at least once, the
//! event's id telling duplicates apart). The broker keeps the hub's session
//! (`clean_session = false`), so sends it has no `PUBACK` for are delivered again, and
//! answered again without being stored twice.
//!
//! Must never: panic or stop the hub, whatever the broker does; hold the [`Inflight`] lock
//! across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, Transport};
use tokio::sync::{mpsc, watch};

use super::config::MqttConfig;
use super::inflight::Inflight;
use super::intake;
use super::publisher::{Tail, keep_position, publications};
use crate::api::ApiState;
use crate::api::relay::{self, Answer};
use crate::store::Change;

/// Events whose publishes may await their `PUBACK` at once.
const WINDOW: usize = 64;
/// Requests the client queues for its event loop (a page of events and their presences, and
/// sends' answers, fit).
const CLIENT_QUEUE: usize = 2048;
/// The first pause after a failed connection; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(15);
/// How long the bridge gets at shutdown to say goodbye to the broker.
const GOODBYE: Duration = Duration::from_millis(500);

/// Runs the bridge until `stop` turns true.
pub(super) async fn run(config: MqttConfig, api: Arc<ApiState>, mut stop: watch::Receiver<bool>) {
    let store = api.store.clone();
    let consumer = config.consumer_name();
    let Some(start) = start_position(&api, &consumer, &mut stop).await else {
        return;
    };
    tracing::info!(
        broker = %format!("{}:{}", config.host, config.port),
        tls = config.tls.is_some(),
        position = start,
        "MQTT bridge starting"
    );
    let (positions, stored) = watch::channel(start);
    let keeper = tokio::spawn(keep_position(store, consumer, stored));
    let mut pause = FIRST_PAUSE;
    loop {
        let position = *positions.borrow();
        let ended = connection(&config, &api, position, &positions, &mut stop).await;
        match ended {
            Ended::Stopped => break,
            Ended::Broken { was_connected } => {
                if was_connected {
                    pause = FIRST_PAUSE;
                }
                let jitter = Duration::from_millis(u64::from(rand::random::<u8>()));
                tokio::select! {
                    _ = tokio::time::sleep(pause + jitter) => {}
                    _ = stopped(&mut stop) => break,
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
    drop(positions);
    let _ = keeper.await;
    tracing::info!("MQTT bridge stopped");
}

/// The stored position, or (the first time) the end of the log, stored at once; `None` if
/// stopped before the database answered.
async fn start_position(
    api: &ApiState,
    consumer: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<i64> {
    loop {
        let found = match api.store.consumer_position(consumer).await {
            Ok(Some(position)) => return Some(position),
            Ok(None) => {
                let now = api.store.events().last_id();
                let change = Change::SetConsumerPosition {
                    consumer: consumer.to_string(),
                    position: now,
                };
                api.store.apply(change).await.map(|_| now)
            }
            Err(err) => Err(err),
        };
        match found {
            Ok(position) => return Some(position),
            Err(err) => {
                tracing::warn!(error = %err, "MQTT bridge: cannot read its position yet");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopped(stop) => return None,
                }
            }
        }
    }
}

/// How a connection ended.
enum Ended {
    Stopped,
    Broken { was_connected: bool },
}

/// One connection's client, shared with the tasks answering sends.
#[derive(Clone)]
struct Link {
    client: AsyncClient,
    inflight: Arc<Mutex<Inflight>>,
}

impl Link {
    fn inflight(&self) -> MutexGuard<'_, Inflight> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a publish tagged `event` to the client; `false` if it could not take it.
    fn publish(&self, event: Option<i64>, topic: String, payload: Vec<u8>, retain: bool) -> bool {
        let mut inflight = self.inflight();
        inflight.handed(event);
        let taken = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .is_ok();
        if !taken {
            inflight.withdrawn();
        }
        taken
    }
}

fn options(config: &MqttConfig) -> MqttOptions {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(100)
        .set_max_packet_size(1 << 20, 1 << 20);
    if let Some(username) = &config.username {
        options.set_credentials(username, config.password.clone().unwrap_or_default());
    }
    if let Some(tls) = &config.tls {
        options.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    options
}

/// One connection, from connecting until it breaks or the bridge stops.
async fn connection(
    config: &MqttConfig,
    api: &Arc<ApiState>,
    position: i64,
    positions: &watch::Sender<i64>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let (client, mut eventloop) = AsyncClient::new(options(config), CLIENT_QUEUE);
    eventloop.network_options.set_connection_timeout(10);
    let link = Link {
        client,
        inflight: Arc::new(Mutex::new(Inflight::new(position))),
    };
    // The event loop runs in a task of its own, so that nothing here cancels its `poll`.
    let (events_tx, mut events) = mpsc::channel(256);
    let poller = tokio::spawn(async move {
        loop {
            let polled = eventloop.poll().await;
            let broken = polled.is_err();
            if events_tx.send(polled).await.is_err() || broken {
                return;
            }
        }
    });
    let send_topic = intake::send_topic(&config.prefix);
    let mut tail = Tail::new(api.store.events().clone(), position);
    let mut connected = false;
    let mut retry_reading = None::<tokio::time::Instant>;
    let ended = loop {
        let room = connected
            && link.inflight().unacknowledged() < WINDOW
            && retry_reading.is_none_or(|at| tokio::time::Instant::now() >= at);
        tokio::select! {
            _ = stopped(stop) => {
                let _ = link.client.try_disconnect();
                let _ = tokio::time::timeout(GOODBYE, async {
                    while events.recv().await.is_some() {}
                }).await;
                break Ended::Stopped;
            }
            polled = events.recv() => {
                let Some(polled) = polled else {
                    break Ended::Broken { was_connected: connected };
                };
                match polled {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected = true;
                        tracing::info!("MQTT bridge connected to the broker");
                        let _ = link.client.try_subscribe(&send_topic, QoS::AtLeastOnce);
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => link.inflight().went_out(pkid),
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        let position = {
                            let mut inflight = link.inflight();
                            inflight.acked(ack.pkid);
                            inflight.position()
                        };
                        positions.send_if_modified(|it| {
                            let moved = position > *it;
                            *it = (*it).max(position);
                            moved
                        });
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        if publish.topic == send_topic {
                            tokio::spawn(answer_send(
                                api.clone(),
                                config.prefix.clone(),
                                config.send_key.clone(),
                                link.clone(),
                                publish,
                            ));
                        } else {
                            let _ = link.client.try_ack(&publish);
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "MQTT bridge: the broker connection failed; reconnecting");
                        break Ended::Broken { was_connected: connected };
                    }
                }
            }
            read = tail.next(), if room => match read {
                Ok(batch) => {
                    retry_reading = None;
                    if !hand_over(config, &link, &batch) {
                        tracing::warn!("MQTT bridge: the client's queue is full; reconnecting");
                        break Ended::Broken { was_connected: connected };
                    }
                    let position = link.inflight().position();
                    positions.send_if_modified(|it| {
                        let moved = position > *it;
                        *it = (*it).max(position);
                        moved
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "MQTT bridge: cannot read the event log now");
                    retry_reading = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            },
            _ = sleep_until(retry_reading), if retry_reading.is_some() && connected => {
                retry_reading = None;
            }
        }
    };
    poller.abort();
    ended
}

/// Resolves once the bridge is asked to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|it| *it).await;
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Hands a batch of events to the client; `false` if it could not take them all.
fn hand_over(config: &MqttConfig, link: &Link, batch: &[crate::store::Event]) -> bool {
    for event in batch {
        for it in publications(&config.prefix, &config.events, event) {
            if !link.publish(Some(event.id), it.topic, it.payload, it.retain) {
                return false;
            }
        }
        link.inflight().read_through(event.id);
    }
    true
}

/// Answers one send received on `PREFIX/send`, then acknowledges it to the broker (not
/// before: a send the hub did not answer is delivered again).
async fn answer_send(
    api: Arc<ApiState>,
    prefix: String,
    key: Option<String>,
    link: Link,
    publish: rumqttc::Publish,
) {
    let (topic, id, answer) = match intake::read(&prefix, &publish.payload) {
        Ok(envelope) => {
            let answer = match &key {
                Some(key) => relay::send_sms(&api, key, envelope.body).await,
                None => Answer::of_error(intake::sends_disabled()).await,
            };
            (envelope.reply_topic, Some(envelope.id), answer)
        }
        Err(unreadable) => (
            unreadable.reply_topic,
            unreadable.id,
            Answer::of_error(unreadable.error).await,
        ),
    };
    let payload = intake::reply_payload(id.as_deref(), &answer);
    if link.publish(None, topic, payload, false) {
        let _ = link.client.try_ack(&publish);
    }
}
