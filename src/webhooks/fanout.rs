//! The fan-out: reads the event log after each enabled webhook's position (its `cursor`, kept
//! in the database) and commits, in one change, a delivery for every event the webhook wants
//! and may see, and the webhooks' new positions. A crash between reading and committing only
//! means reading again; a delivery is unique per (webhook, event), so nothing is added twice.
//!
//! Waits for the writer's signal (a new event committed) or a wake-up (a webhook created or
//! enabled); never polls.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use crate::auth::{Principal, Scopes, Via};
use crate::domain::format_millis;
use crate::events::access::{Filter, visible};
use crate::store::{Change, Event, NewDelivery, Store, StoreError, WebhookChange, WebhookRecord};

/// Events read per round.
const PAGE: u64 = 512;

/// How long the fan-out trusts "no webhook is enabled" without asking the store again. Every
/// route that creates or enables a webhook wakes it at once; this only bounds the wait for a
/// change made any other way.
const NONE_ENABLED_FOR: Duration = Duration::from_secs(10);

pub(super) async fn run(store: Store, wake: Arc<Notify>, sender: Arc<Notify>) {
    let mut committed = store.events().subscribe();
    let mut writer_gone = false;
    loop {
        let last = *committed.borrow_and_update();
        // With no webhook enabled, only a wake-up (or `NONE_ENABLED_FOR`) starts the next
        // round: a hub without webhooks does no work per commit.
        let quiet = match round(&store, last).await {
            Ok(Round::Behind) => {
                sender.notify_one();
                continue;
            }
            Ok(Round::UpToDate) => false,
            Ok(Round::NoneEnabled) => true,
            Err(err) => {
                tracing::warn!(error = %err, "webhook fan-out failed; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tokio::select! {
            changed = committed.changed(), if !writer_gone && !quiet => {
                writer_gone = changed.is_err();
            }
            () = tokio::time::sleep(NONE_ENABLED_FOR), if quiet => {}
            () = wake.notified() => {}
        }
    }
}

/// What a round found.
enum Round {
    /// Events were behind some webhook: they are handed on, and there may be more.
    Behind,
    /// Every enabled webhook is at `last`.
    UpToDate,
    /// No webhook is enabled.
    NoneEnabled,
}

/// One page of the log for the webhooks behind `last`.
async fn round(store: &Store, last: i64) -> Result<Round, StoreError> {
    let enabled = store.enabled_webhooks().await?;
    if enabled.is_empty() {
        return Ok(Round::NoneEnabled);
    }
    let hooks: Vec<WebhookRecord> = enabled.into_iter().filter(|it| it.cursor < last).collect();
    let Some(from) = hooks.iter().map(|it| it.cursor).min() else {
        return Ok(Round::UpToDate);
    };
    let page = store.events().after(from, PAGE, None, None).await?;
    // Nothing left up to `last`: the rest was pruned.
    let upto = page.last().map_or(last, |it| it.id);
    let mut deliveries = Vec::new();
    let mut cursors = Vec::new();
    for hook in &hooks {
        let newer: Vec<&Event> = page.iter().filter(|it| it.id > hook.cursor).collect();
        if hook.compat_id.is_some() {
            // A webhook of capcom6's API: that app's envelope, built from the message.
            for event in matching(hook, newer) {
                if let Some(body) = super::compat::body(store, hook, event).await? {
                    deliveries.push(NewDelivery {
                        webhook_id: hook.id,
                        event_id: event.id,
                        event_type: event.kind.clone(),
                        message_id: event.message_id,
                        body,
                    });
                }
            }
        } else {
            deliveries.extend(wanted(hook, newer));
        }
        cursors.push((hook.id, upto));
    }
    store
        .apply(Change::Webhook(WebhookChange::FanOut {
            deliveries,
            cursors,
        }))
        .await?;
    Ok(Round::Behind)
}

/// The deliveries of `events` that `hook` asked for and may see, in Standard Webhooks'
/// envelope; none for a webhook of capcom6's API (its bodies need the store: [`round`]).
pub fn wanted<'a>(
    hook: &WebhookRecord,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<NewDelivery> {
    if hook.compat_id.is_some() {
        return Vec::new();
    }
    matching(hook, events)
        .into_iter()
        .map(|event| NewDelivery {
            webhook_id: hook.id,
            event_id: event.id,
            event_type: event.kind.clone(),
            message_id: event.message_id,
            body: body(event),
        })
        .collect()
}

/// The events of `events` that `hook` asked for and may see.
fn matching<'a>(
    hook: &WebhookRecord,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<&'a Event> {
    let (principal, filter) = reader_of(hook);
    events
        .into_iter()
        .filter(|it| filter.matches(it) && visible(&principal, it))
        .collect()
}

/// Who a webhook reads as (its creator's tenant and scopes) and what it asked for.
fn reader_of(hook: &WebhookRecord) -> (Principal, Filter) {
    let principal = Principal::new(
        hook.owner,
        format!("webhook:{}", hook.id),
        Scopes::parse(&hook.scopes).unwrap_or(Scopes::NONE),
        Via::ApiKey,
    );
    let filter = Filter {
        types: Filter::parse_types(&hook.types).unwrap_or_default(),
        device_id: hook.device_id.clone(),
        message_id: None,
    };
    (principal, filter)
}

/// The body sent: the Standard Webhooks envelope (`type`, `timestamp`, `data`) around the
/// event as the streams show it.
fn body(event: &Event) -> String {
    json!({
        "type": event.kind,
        "timestamp": format_millis(event.at),
        "data": event,
    })
    .to_string()
}
