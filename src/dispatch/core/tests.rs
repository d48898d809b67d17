//! The dispatcher's policies, driven by tokio's paused clock: no sleeps, no I/O.

use std::time::Duration;

use smshub_protocol::device::{Battery, Capabilities, SimStatus, Status};
use tokio::time::advance;
use uuid::Uuid;

use super::*;
use crate::dispatch::Clock;
use crate::domain::PhoneNumber;

fn message(to: &str) -> QueuedMessage {
    QueuedMessage {
        id: Uuid::new_v4(),
        api_key: None,
        recipient: PhoneNumber::from_e164_unchecked(to.into()),
        text: "hello".into(),
        parts: 1,
        delivery_report: false,
        device_id: None,
        sim_slot: None,
        created_at: 0,
        priority: 0,
        not_before: None,
        valid_until: None,
        attempts: 0,
        avoid: Vec::new(),
        allowed: None,
    }
}

fn status(battery: u8, dbm: i32) -> Status {
    Status {
        battery: Some(Battery {
            level: battery,
            charging: false,
        }),
        sims: vec![SimStatus {
            slot: 0,
            signal_dbm: Some(dbm),
            registered: true,
            ..Default::default()
        }],
        connection: None,
    }
}

fn connect(
    core: &mut Core,
    device: &str,
    battery: u8,
    dbm: i32,
    max_in_flight: u32,
    now: Millis,
) -> Vec<Action> {
    let capabilities = Capabilities {
        max_in_flight,
        ..Capabilities::default()
    };
    let device = DeviceId::from(device);
    let actions = core.connected(&device, 1, &capabilities, None, Some(&[]), now);
    core.status(&device, 1, status(battery, dbm));
    actions
}

/// The offers in `actions`, as (device, message id).
fn offers(actions: &[Action]) -> Vec<(DeviceId, Uuid)> {
    actions
        .iter()
        .filter_map(|it| match it {
            Action::Offer { device, jobs } => Some(
                jobs.iter()
                    .map(|(m, _)| (device.clone(), m.id))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

fn requeued(actions: &[Action]) -> Vec<QueuedMessage> {
    actions
        .iter()
        .filter_map(|it| match it {
            Action::Requeue { messages, .. } => Some(messages.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_offer_not_accepted_within_its_lease_goes_to_another_device() {
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    connect(&mut core, "a", 100, -60, 4, clock.now());
    let m = message("+1");
    core.enqueue(vec![m.clone()], clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("a"), m.id)]
    );
    connect(&mut core, "b", 40, -100, 4, clock.now());

    advance(Duration::from_secs(29)).await;
    assert!(
        core.tick(clock.now()).is_empty(),
        "the lease has not run out"
    );
    advance(Duration::from_secs(2)).await;
    let actions = core.tick(clock.now());
    assert!(actions.contains(&Action::Revoke {
        device: "a".into(),
        ids: vec![m.id],
        reason: RevokeReason::LeaseExpired
    }));
    let back = requeued(&actions);
    assert_eq!(back.len(), 1);
    // Once the shell has committed the requeue, the job goes to the other device at once,
    // even though the first one is healthier.
    core.enqueue(back, clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("b"), m.id)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_past_its_validity_expires_and_is_never_offered() {
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    let mut m = message("+1");
    m.valid_until = Some(clock.now() + 10_000);
    core.enqueue(vec![m.clone()], clock.now());
    assert_eq!(core.next_wake(clock.now()), Some(clock.now() + 10_000));
    advance(Duration::from_secs(11)).await;
    // A device comes online just after: the shell ticks before it dispatches.
    connect(&mut core, "a", 100, -60, 4, clock.now());
    let actions = core.tick(clock.now());
    assert!(
        actions.contains(&Action::Expire { ids: vec![m.id] }),
        "{actions:?}"
    );
    assert!(offers(&core.dispatch(clock.now())).is_empty());

    // Already expired when it arrives: expired at once.
    let mut late = message("+1");
    late.valid_until = Some(clock.now() - 1);
    assert_eq!(
        core.enqueue(vec![late.clone()], clock.now()),
        vec![Action::Expire { ids: vec![late.id] }]
    );

    // An offer still unaccepted when it expires is revoked and expires.
    let mut offered = message("+1");
    offered.valid_until = Some(clock.now() + 5_000);
    core.enqueue(vec![offered.clone()], clock.now());
    assert_eq!(offers(&core.dispatch(clock.now())).len(), 1);
    advance(Duration::from_secs(6)).await;
    let actions = core.tick(clock.now());
    assert!(actions.contains(&Action::Revoke {
        device: "a".into(),
        ids: vec![offered.id],
        reason: RevokeReason::Expired
    }));
    assert!(actions.contains(&Action::Expire {
        ids: vec![offered.id]
    }));
}

#[tokio::test(start_paused = true)]
async fn scheduled_messages_wait_for_their_time_and_priority_goes_first() {
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    connect(&mut core, "a", 100, -60, 1, clock.now());
    let mut later = message("+1");
    later.not_before = Some(clock.now() + 60_000);
    let low = message("+2");
    let mut high = message("+3");
    high.priority = 10;
    high.created_at = 5;
    core.enqueue(vec![later.clone(), low.clone(), high.clone()], clock.now());
    // One slot: the high-priority message goes first, though it is younger.
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("a"), high.id)]
    );
    core.finished(&DeviceId::from("a"), high.id, JobEnd::Sent, clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("a"), low.id)]
    );
    core.finished(&DeviceId::from("a"), low.id, JobEnd::Sent, clock.now());
    assert!(
        offers(&core.dispatch(clock.now())).is_empty(),
        "the scheduled message went early"
    );
    assert!(
        core.why_waiting(later.id, clock.now())
            .unwrap()
            .starts_with("scheduled for")
    );
    assert_eq!(core.next_wake(clock.now()), Some(clock.now() + 60_000));
    advance(Duration::from_secs(60)).await;
    core.tick(clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("a"), later.id)]
    );
}

#[tokio::test(start_paused = true)]
async fn temporary_failures_back_off_and_prefer_another_device() {
    let clock = Clock::new();
    let config = DispatchConfig {
        retry_base_ms: 5_000,
        ..DispatchConfig::default()
    };
    let mut core = Core::new(config);
    connect(&mut core, "a", 100, -60, 4, clock.now());
    let m = message("+1");
    core.enqueue(vec![m.clone()], clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("a"), m.id)]
    );
    core.owned(&DeviceId::from("a"), &[m.id], clock.now());
    connect(&mut core, "b", 30, -100, 4, clock.now());
    core.finished(
        &DeviceId::from("a"),
        m.id,
        JobEnd::Retried {
            code: "no_service".into(),
        },
        clock.now(),
    );
    assert!(
        offers(&core.dispatch(clock.now())).is_empty(),
        "retried before its backoff"
    );
    assert!(
        core.why_waiting(m.id, clock.now())
            .unwrap()
            .starts_with("retrying")
    );
    advance(Duration::from_millis(5_001)).await;
    core.tick(clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("b"), m.id)],
        "the weaker device that did not fail"
    );

    // With no other device, the one that failed is the last resort after the backoff.
    let mut solo = Core::new(DispatchConfig::default());
    connect(&mut solo, "a", 100, -60, 4, clock.now());
    solo.enqueue(vec![m.clone()], clock.now());
    solo.dispatch(clock.now());
    solo.owned(&DeviceId::from("a"), &[m.id], clock.now());
    solo.finished(
        &DeviceId::from("a"),
        m.id,
        JobEnd::Retried {
            code: "busy".into(),
        },
        clock.now(),
    );
    advance(Duration::from_secs(10)).await;
    solo.tick(clock.now());
    assert_eq!(
        offers(&solo.dispatch(clock.now())),
        vec![(DeviceId::from("a"), m.id)]
    );
}

#[tokio::test(start_paused = true)]
async fn an_accepted_job_without_an_outcome_ends_as_outcome_unknown() {
    let clock = Clock::new();
    let config = DispatchConfig {
        outcome_timeout_ms: 600_000,
        ..DispatchConfig::default()
    };
    let mut core = Core::new(config);
    connect(&mut core, "a", 100, -60, 4, clock.now());
    let m = message("+1");
    core.enqueue(vec![m.clone()], clock.now());
    core.dispatch(clock.now());
    core.owned(&DeviceId::from("a"), &[m.id], clock.now());
    // The phone goes away; its accepted job is not offered to anyone else.
    assert!(core.disconnected(&DeviceId::from("a"), 1).is_empty());
    connect(&mut core, "b", 100, -60, 4, clock.now());
    assert!(offers(&core.dispatch(clock.now())).is_empty());
    advance(Duration::from_secs(599)).await;
    assert!(core.tick(clock.now()).is_empty());
    advance(Duration::from_secs(2)).await;
    let actions = core.tick(clock.now());
    assert!(
        actions
            .iter()
            .any(|it| matches!(it, Action::OutcomeUnknown { device, ids, .. } if device == "a" && ids == &vec![m.id])),
        "{actions:?}"
    );
    assert!(
        offers(&core.dispatch(clock.now())).is_empty(),
        "never resent blindly"
    );
}

#[tokio::test(start_paused = true)]
async fn a_phone_that_lost_its_journal_cannot_say_what_it_sent() {
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    connect(&mut core, "a", 100, -60, 4, clock.now());
    let m = message("+1");
    core.enqueue(vec![m.clone()], clock.now());
    core.dispatch(clock.now());
    core.owned(&DeviceId::from("a"), &[m.id], clock.now());
    core.disconnected(&DeviceId::from("a"), 1);
    let capabilities = Capabilities::default();
    let actions = core.connected(
        &DeviceId::from("a"),
        2,
        &capabilities,
        None,
        Some(&[]),
        clock.now(),
    );
    assert!(
        actions
            .iter()
            .any(|it| matches!(it, Action::OutcomeUnknown { ids, .. } if ids == &vec![m.id]))
    );
    // A phone that lists it keeps it.
    let mut core = Core::new(DispatchConfig::default());
    connect(&mut core, "a", 100, -60, 4, clock.now());
    core.enqueue(vec![m.clone()], clock.now());
    core.dispatch(clock.now());
    core.owned(&DeviceId::from("a"), &[m.id], clock.now());
    core.disconnected(&DeviceId::from("a"), 1);
    let actions = core.connected(
        &DeviceId::from("a"),
        2,
        &capabilities,
        None,
        Some(&[m.id]),
        clock.now(),
    );
    assert!(
        !actions
            .iter()
            .any(|it| matches!(it, Action::OutcomeUnknown { .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_device_that_keeps_failing_is_rested() {
    let clock = Clock::new();
    let config = DispatchConfig {
        breaker_failures: 3,
        breaker_rest_ms: 60_000,
        ..DispatchConfig::default()
    };
    let mut core = Core::new(config);
    connect(&mut core, "a", 100, -60, 10, clock.now());
    connect(&mut core, "b", 30, -100, 10, clock.now());
    let mut rested = false;
    for _ in 0..3 {
        let m = message("+1");
        core.enqueue(vec![m.clone()], clock.now());
        let offered = offers(&core.dispatch(clock.now()));
        let device = offered[0].0.clone();
        let actions = core.finished(
            &device,
            m.id,
            JobEnd::Failed {
                code: "rejected".into(),
            },
            clock.now(),
        );
        rested |= actions
            .iter()
            .any(|it| matches!(it, Action::Rest { until: Some(_), .. }));
    }
    // Failures by device: whichever got them; force three on "a" to be sure.
    if !rested {
        for _ in 0..3 {
            let actions = core.finished(
                &DeviceId::from("a"),
                Uuid::new_v4(),
                JobEnd::Failed {
                    code: "rejected".into(),
                },
                clock.now(),
            );
            rested |= actions.iter().any(
                |it| matches!(it, Action::Rest { device, until: Some(_), .. } if device == "a"),
            );
        }
    }
    assert!(rested);
    let m = message("+1");
    core.enqueue(vec![m.clone()], clock.now());
    let offered = offers(&core.dispatch(clock.now()));
    assert_eq!(offered.len(), 1);
    assert_ne!(offered[0].0, "a", "a rested device got work");
    advance(Duration::from_secs(61)).await;
    let actions = core.tick(clock.now());
    assert!(actions.contains(&Action::Rest {
        device: "a".into(),
        until: None,
        reason: None
    }));
}

#[tokio::test(start_paused = true)]
async fn quotas_and_pacing_move_traffic_to_the_next_sim_and_explain_the_wait() {
    let clock = Clock::new();
    let limits = Limits {
        per_minute: Some(2),
        ..Limits::default()
    };
    let mut core = Core::new(DispatchConfig {
        limits,
        ..DispatchConfig::default()
    });
    connect(&mut core, "a", 100, -60, 10, clock.now());
    let sent: Vec<_> = (0..3).map(|n| message(&format!("+{n}"))).collect();
    core.enqueue(sent.clone(), clock.now());
    let offered = offers(&core.dispatch(clock.now()));
    assert_eq!(offered.len(), 2, "the SIM's cap is 2 parts a minute");
    let left = sent
        .iter()
        .find(|it| !offered.iter().any(|(_, id)| *id == it.id))
        .unwrap();
    let why = core.why_waiting(left.id, clock.now()).unwrap();
    assert!(why.contains("cap of 2 parts per minute"), "{why}");
    // A second device takes the traffic the first cannot.
    connect(&mut core, "b", 50, -90, 10, clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("b"), left.id)]
    );

    // Pacing: a minimum interval between two sends of a SIM.
    let limits = Limits {
        min_interval_ms: 2_000,
        ..Limits::default()
    };
    let mut core = Core::new(DispatchConfig {
        limits,
        ..DispatchConfig::default()
    });
    connect(&mut core, "a", 100, -60, 10, clock.now());
    core.enqueue(vec![message("+1"), message("+2")], clock.now());
    assert_eq!(offers(&core.dispatch(clock.now())).len(), 1);
    assert_eq!(core.next_wake(clock.now()), Some(clock.now() + 2_000));
    advance(Duration::from_secs(2)).await;
    core.tick(clock.now());
    assert_eq!(offers(&core.dispatch(clock.now())).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn replies_to_a_recipient_stick_to_the_same_sim() {
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    connect(&mut core, "weak", 30, -100, 10, clock.now());
    let first = message("+15551234");
    core.enqueue(vec![first.clone()], clock.now());
    core.dispatch(clock.now());
    core.owned(&DeviceId::from("weak"), &[first.id], clock.now());
    core.finished(&DeviceId::from("weak"), first.id, JobEnd::Sent, clock.now());
    connect(&mut core, "strong", 100, -55, 10, clock.now());
    for _ in 0..3 {
        let next = message("+15551234");
        core.enqueue(vec![next.clone()], clock.now());
        assert_eq!(
            offers(&core.dispatch(clock.now())),
            vec![(DeviceId::from("weak"), next.id)]
        );
        core.finished(&DeviceId::from("weak"), next.id, JobEnd::Sent, clock.now());
    }
    let other = message("+15559999");
    core.enqueue(vec![other.clone()], clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(DeviceId::from("strong"), other.id)]
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_takes_a_message_back_and_revokes_an_offer() {
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    let waiting = message("+1");
    core.enqueue(vec![waiting.clone()], clock.now());
    assert_eq!(core.waiting(), 1);
    assert!(core.cancel(waiting.id).is_empty());
    assert_eq!(core.waiting(), 0);
    connect(&mut core, "a", 100, -60, 4, clock.now());
    let offered = message("+2");
    core.enqueue(vec![offered.clone()], clock.now());
    core.dispatch(clock.now());
    let actions = core.cancel(offered.id);
    assert!(actions.contains(&Action::Revoke {
        device: "a".into(),
        ids: vec![offered.id],
        reason: RevokeReason::Cancelled
    }));
    assert!(offers(&core.dispatch(clock.now())).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_backlog_no_device_can_take_leaves_the_dispatcher_asleep() {
    // Found as a hub spinning a whole core: after a send, an unlimited SIM's pacing instant
    // is "now", and with messages waiting that past instant was returned as the next wake,
    // every pass, while the only device was full and after it left.
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    connect(&mut core, "a", 100, -60, 1, clock.now());
    core.enqueue(vec![message("+1"), message("+2")], clock.now());
    assert_eq!(offers(&core.dispatch(clock.now())).len(), 1);
    advance(Duration::from_millis(5)).await;
    let wake = core.next_wake(clock.now());
    assert!(
        wake.is_none_or(|at| at > clock.now()),
        "the device is full: {wake:?} is not in the future"
    );
    core.disconnected(&DeviceId::from("a"), 1);
    advance(Duration::from_millis(5)).await;
    let wake = core.next_wake(clock.now());
    assert!(
        wake.is_none_or(|at| at > clock.now()),
        "no device at all: {wake:?} is not in the future"
    );
}

/// An operator's rest: the device gets no new offer (not even a message pinned to it) until
/// the rest ends, the job it holds stays its own, and ending the rest (before its time) makes
/// it eligible at once.
#[tokio::test(start_paused = true)]
async fn an_operator_rests_a_device_and_ends_the_rest() {
    let clock = Clock::new();
    let mut core = Core::new(DispatchConfig::default());
    let a = DeviceId::from("a");
    connect(&mut core, "a", 100, -60, 10, clock.now());
    let held = message("+1");
    core.enqueue(vec![held.clone()], clock.now());
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(a.clone(), held.id)]
    );
    core.owned(&a, &[held.id], clock.now());
    connect(&mut core, "b", 30, -100, 10, clock.now());

    let until = clock.now() + 600_000;
    let actions = core.set_rest(
        &a,
        Some(until),
        Some("swapping the SIM".into()),
        clock.now(),
    );
    assert_eq!(
        actions,
        vec![Action::Rest {
            device: a.clone(),
            until: Some(until),
            reason: Some("swapping the SIM".into()),
        }]
    );
    let free = message("+2");
    let mut pinned = message("+3");
    pinned.device_id = Some(a.clone());
    core.enqueue(vec![free.clone(), pinned.clone()], clock.now());
    let offered = offers(&core.dispatch(clock.now()));
    assert_eq!(
        offered,
        vec![(DeviceId::from("b"), free.id)],
        "a rested device got work"
    );
    let why = core.why_waiting(pinned.id, clock.now()).unwrap();
    assert!(why.contains("swapping the SIM"), "{why}");
    // The job it held stays its own: its outcome counts.
    let actions = core.finished(&a, held.id, JobEnd::Sent, clock.now());
    assert!(offers(&actions).is_empty());
    assert!(offers(&core.dispatch(clock.now())).is_empty());
    // Time passes, the rest goes on (the breaker's tick does not end it early).
    advance(Duration::from_secs(300)).await;
    assert!(
        !core
            .tick(clock.now())
            .iter()
            .any(|it| matches!(it, Action::Rest { .. }))
    );
    assert!(offers(&core.dispatch(clock.now())).is_empty());

    // Ending it: eligible at once.
    let actions = core.set_rest(&a, None, None, clock.now());
    assert_eq!(
        actions,
        vec![Action::Rest {
            device: a.clone(),
            until: None,
            reason: None,
        }]
    );
    assert_eq!(
        offers(&core.dispatch(clock.now())),
        vec![(a.clone(), pinned.id)]
    );
    // Ending no rest changes nothing; a rest that would end in the past is no rest.
    assert!(core.set_rest(&a, None, None, clock.now()).is_empty());
    assert!(
        core.set_rest(&a, Some(clock.now()), Some("x".into()), clock.now())
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn quotas_show_each_sims_limits_and_what_it_used() {
    let clock = Clock::new();
    let defaults = Limits {
        min_interval_ms: 1_000,
        per_day: Some(500),
        ..Limits::default()
    };
    let mut core = Core::new(DispatchConfig {
        limits: defaults,
        ..DispatchConfig::default()
    });
    connect(&mut core, "a", 100, -60, 10, clock.now());
    let a = DeviceId::from("a");
    core.sims_reported(
        &a,
        vec![
            ReportedSim {
                slot: 0,
                iccid: None,
                operator: None,
            },
            ReportedSim {
                slot: 1,
                iccid: Some("8933000000000000001".into()),
                operator: None,
            },
        ],
    );
    let own = Limits {
        per_hour: Some(5),
        ..Limits::default()
    };
    core.put_sim_card(SimCard {
        id: Uuid::new_v4(),
        iccid: Some("8933000000000000001".into()),
        device: None,
        slot: None,
        label: None,
        operator: None,
        enabled: true,
        limits: Some(own),
    });
    let mut long = message("+1");
    long.parts = 2;
    core.enqueue(vec![long], clock.now());
    assert_eq!(offers(&core.dispatch(clock.now())).len(), 1);

    let quotas = core.quotas(clock.now());
    assert_eq!(quotas.len(), 1);
    assert_eq!(quotas[0].0, a);
    let sims = &quotas[0].1;
    let used = |minute, hour, day, recipients_day| crate::dispatch::limits::Used {
        minute,
        hour,
        day,
        recipients_day,
    };
    assert_eq!(
        sims,
        &vec![
            SimQuota {
                slot: 0,
                limits: defaults,
                used: used(2, 2, 2, 1),
                paced_until: Some(clock.now() + 1_000),
            },
            SimQuota {
                slot: 1,
                limits: own,
                used: used(0, 0, 0, 0),
                paced_until: None,
            },
        ]
    );

    // The device's own limits replace the defaults, not the card's; a minute later the
    // minute's window and the pacing are over, the day still counts.
    let mine = Limits {
        per_day: Some(7),
        ..Limits::default()
    };
    core.set_limits(&a, Some(mine));
    advance(Duration::from_secs(61)).await;
    let sims = core.quotas(clock.now()).remove(0).1;
    assert_eq!(sims[0].limits, mine);
    assert_eq!(sims[0].used, used(0, 2, 2, 1));
    assert_eq!(sims[0].paced_until, None);
    assert_eq!(sims[1].limits, own);
}
