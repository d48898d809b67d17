//! [`Tail`]: the newest events of the log, shared by every reader of one process, so that
//! N streams (and webhooks, MQTT) following the log cost one query per commit, not N.
//!
//! The tail holds every event with an id in `(floor, top]`, in order. A reader whose position
//! is at or after `floor` is served from memory; the first reader to find the tail behind the
//! writer's last committed id reads the missing rows once for everybody. A reader further
//! behind (a replay) reads the table itself.
//!
//! Sound because the log has one writer per database, which commits events in id order and
//! announces the last id only after the commit: rows up to an announced id never appear later.

use std::collections::VecDeque;

use uuid::Uuid;

use super::Event;

/// Events kept at most.
pub(super) const CAPACITY: usize = 4096;

pub(super) struct Tail {
    floor: i64,
    top: i64,
    events: VecDeque<Event>,
}

impl Tail {
    /// An empty tail at `last` (the last id stored when the process started).
    pub(super) fn new(last: i64) -> Tail {
        Tail {
            floor: last,
            top: last,
            events: VecDeque::new(),
        }
    }

    /// The last id the tail holds everything up to.
    pub(super) fn top(&self) -> i64 {
        self.top
    }

    /// Whether a reader after `after` can be served from here (after catching up).
    pub(super) fn covers(&self, after: i64) -> bool {
        after >= self.floor
    }

    /// Appends rows read after [`Tail::top`], oldest first; `until` is the last committed id the
    /// rows were read under (everything up to it is now held, even when no rows came).
    pub(super) fn extend(&mut self, rows: Vec<Event>, until: Option<i64>) {
        for row in rows {
            if row.id > self.top {
                self.top = row.id;
                self.events.push_back(row);
            }
        }
        if let Some(until) = until {
            self.top = self.top.max(until);
        }
        while self.events.len() > CAPACITY {
            if let Some(old) = self.events.pop_front() {
                self.floor = old.id;
            }
        }
    }

    /// Up to `limit` held events after `after`, of one message or device if asked.
    pub(super) fn after(
        &self,
        after: i64,
        limit: usize,
        message: Option<Uuid>,
        device: Option<&str>,
    ) -> Vec<Event> {
        let start = self.events.partition_point(|it| it.id <= after);
        self.events
            .range(start..)
            .filter(|it| message.is_none_or(|want| it.message_id == Some(want)))
            .filter(|it| device.is_none_or(|want| it.device_id.as_deref() == Some(want)))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, message: Option<Uuid>) -> Event {
        Event {
            id,
            kind: "message.sent".into(),
            at: 0,
            message_id: message,
            device_id: None,
            owner: None,
            payload: None,
        }
    }

    #[test]
    fn serves_what_it_holds_and_forgets_the_oldest() {
        let mut tail = Tail::new(10);
        assert!(tail.covers(10) && !tail.covers(9));
        let one = Uuid::new_v4();
        tail.extend(
            vec![event(11, None), event(12, Some(one)), event(14, None)],
            Some(15),
        );
        assert_eq!(tail.top(), 15);
        let ids = |events: Vec<Event>| events.iter().map(|it| it.id).collect::<Vec<_>>();
        assert_eq!(ids(tail.after(10, 10, None, None)), [11, 12, 14]);
        assert_eq!(ids(tail.after(11, 1, None, None)), [12]);
        assert_eq!(ids(tail.after(10, 10, Some(one), None)), [12]);
        assert!(tail.after(15, 10, None, None).is_empty());
        // A row already held is not held twice.
        tail.extend(vec![event(14, None)], None);
        assert_eq!(ids(tail.after(13, 10, None, None)), [14]);
        tail.extend(
            (16..16 + CAPACITY as i64)
                .map(|id| event(id, None))
                .collect(),
            None,
        );
        assert!(!tail.covers(12));
        assert!(tail.covers(15));
        assert_eq!(tail.after(15, 1, None, None)[0].id, 16);
    }
}
