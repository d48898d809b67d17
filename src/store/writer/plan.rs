//! The planner: orders a batch's changes into groups, so that a burst of reports from many
//! devices becomes a few set-based statements (`runs.rs`) rather than one per change.
//!
//! Pure: no SQL, no I/O. Must never: move a change past an earlier change to the same message,
//! or past a change that is not groupable; applying the groups in order must end exactly where
//! applying the batch one change at a time ends (`tests.rs` checks it).

use std::collections::HashMap;

use uuid::Uuid;

use super::Change;

/// Changes per set-based statement: each adds an `(id AND device) OR` term, and SQLite
/// refuses expressions deeper than 1000.
const MAX_RUN: usize = 128;

/// Changes that can be applied together as one set-based statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Insert,
    Dispatch,
    Accept,
    Sent,
    Delivered,
    /// Events only ([`Change::Emit`]): they touch no message, so they join any earlier run.
    Emit,
}

impl Kind {
    /// The kind of a groupable change; `None` for any other.
    fn of(change: &Change) -> Option<Kind> {
        match change {
            Change::Insert(_) => Some(Kind::Insert),
            Change::Dispatch { .. } => Some(Kind::Dispatch),
            Change::Accept { .. } => Some(Kind::Accept),
            Change::Sent { .. } => Some(Kind::Sent),
            Change::Delivered { .. } => Some(Kind::Delivered),
            Change::Emit(_) => Some(Kind::Emit),
            _ => None,
        }
    }
}

/// Changes applied together, in the order of the groups.
pub(super) struct Group {
    /// `None`: a change applied on its own, which nothing is moved across.
    pub kind: Option<Kind>,
    /// Indexes into the batch's changes, in submission order.
    pub items: Vec<usize>,
}

/// Orders a batch's changes into groups of one kind, so a burst from many devices becomes a
/// few set-based statements rather than one per device.
///
/// A change may join an earlier group of its kind only when it moves past nothing it could
/// depend on: never past an earlier change to the same message (each message's changes keep
/// their order), and never past a change that is not groupable (device edits, failures,
/// requeues, expiry: those act as barriers). Changes to different messages commute (the only
/// shared row they touch is a device's sent counter, an addition), so the result is the same
/// as applying the batch one change at a time.
pub(super) fn plan(flat: &[(usize, usize, &Change)]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    // The first group a groupable change may join.
    let mut floor = 0;
    let mut last_group: HashMap<Uuid, usize> = HashMap::new();
    for (item, (_, _, change)) in flat.iter().enumerate() {
        let Some(kind) = Kind::of(change) else {
            groups.push(Group {
                kind: None,
                items: vec![item],
            });
            floor = groups.len();
            continue;
        };
        let touched = touched_messages(change);
        let earliest = touched
            .iter()
            .filter_map(|id| last_group.get(id).map(|it| it + 1))
            .fold(floor, usize::max);
        let found = (earliest..groups.len())
            .find(|it| groups[*it].kind == Some(kind) && groups[*it].items.len() < MAX_RUN);
        let at = match found {
            Some(it) => {
                groups[it].items.push(item);
                it
            }
            None => {
                groups.push(Group {
                    kind: Some(kind),
                    items: vec![item],
                });
                groups.len() - 1
            }
        };
        for id in touched {
            last_group.insert(id, at);
        }
    }
    groups
}

/// The messages a groupable change touches.
fn touched_messages(change: &Change) -> Vec<Uuid> {
    match change {
        Change::Insert(messages) => messages.iter().map(|it| it.id).collect(),
        Change::Emit(_) => Vec::new(),
        other => vec![change_target(other).0],
    }
}

/// The message and device of a per-device state change.
pub(super) fn change_target(change: &Change) -> (Uuid, &str) {
    match change {
        Change::Dispatch { id, device, .. }
        | Change::Accept { id, device }
        | Change::Sent { id, device, .. }
        | Change::Delivered { id, device } => (*id, device.as_str()),
        _ => (Uuid::nil(), ""),
    }
}
