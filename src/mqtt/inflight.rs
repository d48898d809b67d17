//! [`Inflight`]: what the bridge has handed to its MQTT client and what the broker has
//! acknowledged, and from that the bridge's position in the event log: the last event id
//! such that every publish of it and of every event before it got its `PUBACK`.
//!
//! The client reports a publish going out with its packet id (`Outgoing::Publish(pkid)`),
//! in the order the publishes were handed to it, and the broker acknowledges by packet id;
//! so each publish is tagged when handed over (an event id, or none for a send's reply),
//! the tag is bound to its packet id when it goes out, and released by the `PUBACK`.
//!
//! Pure: no I/O, no clock. One `Inflight` lives as long as one broker connection: after a
//! disconnect the bridge starts a new one at [`Inflight::position`], and what was in flight
//! is published again (duplicates, never a gap).

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Publishes in flight on one connection, and the position they imply.
#[derive(Debug)]
pub struct Inflight {
    /// Publishes handed to the client that it has not sent yet, in order: their tags.
    handed: VecDeque<Option<i64>>,
    /// Sent, awaiting their `PUBACK`: the tag of each packet id.
    sent: HashMap<u16, Option<i64>>,
    /// Unacknowledged publishes per event id.
    pending: BTreeMap<i64, u32>,
    /// Every event up to this id was handed to the client (or needed no publish).
    read: i64,
}

impl Inflight {
    /// Nothing in flight; every event up to `position` handled.
    pub fn new(position: i64) -> Inflight {
        Inflight {
            handed: VecDeque::new(),
            sent: HashMap::new(),
            pending: BTreeMap::new(),
            read: position,
        }
    }

    /// A publish of event `event` (or of no event: `None`) is handed to the client.
    pub fn handed(&mut self, event: Option<i64>) {
        if let Some(id) = event {
            *self.pending.entry(id).or_default() += 1;
        }
        self.handed.push_back(event);
    }

    /// The publish last handed over could not be (the client's queue was full).
    pub fn withdrawn(&mut self) {
        if let Some(Some(id)) = self.handed.pop_back() {
            self.release(id);
        }
    }

    /// Every event up to `id` has been handed over (or needed no publish).
    pub fn read_through(&mut self, id: i64) {
        self.read = self.read.max(id);
    }

    /// The client sent the next handed publish as packet `pkid`.
    pub fn went_out(&mut self, pkid: u16) {
        if let Some(tag) = self.handed.pop_front() {
            self.sent.insert(pkid, tag);
        }
    }

    /// The broker acknowledged packet `pkid`.
    pub fn acked(&mut self, pkid: u16) {
        if let Some(Some(id)) = self.sent.remove(&pkid) {
            self.release(id);
        }
    }

    fn release(&mut self, id: i64) {
        if let Some(count) = self.pending.get_mut(&id) {
            *count -= 1;
            if *count == 0 {
                self.pending.remove(&id);
            }
        }
    }

    /// The last event id such that it and every event before it are acknowledged.
    pub fn position(&self) -> i64 {
        match self.pending.first_key_value() {
            Some((first, _)) => (first - 1).min(self.read),
            None => self.read,
        }
    }

    /// Events with publishes not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_waits_for_the_oldest_unacknowledged_event() {
        let mut it = Inflight::new(10);
        assert_eq!(it.position(), 10);
        // Event 11 (and its presence), a reply, event 13; event 12 needed no publish.
        it.handed(Some(11));
        it.handed(Some(11));
        it.handed(None);
        it.handed(Some(13));
        it.read_through(13);
        assert_eq!(it.position(), 10);
        for pkid in [1, 2, 3, 4] {
            it.went_out(pkid);
        }
        it.acked(4);
        assert_eq!(it.position(), 10, "13 is acknowledged, 11 is not");
        it.acked(1);
        assert_eq!(it.position(), 10, "11's second publish is still out");
        it.acked(3);
        it.acked(2);
        assert_eq!(it.position(), 13);
        assert_eq!(it.unacknowledged(), 0);
    }

    #[test]
    fn a_reused_packet_id_binds_the_next_publish() {
        let mut it = Inflight::new(0);
        it.handed(Some(1));
        it.went_out(1);
        it.handed(Some(2));
        it.acked(1);
        it.went_out(1);
        it.read_through(2);
        assert_eq!(it.position(), 1);
        it.acked(1);
        assert_eq!(it.position(), 2);
    }

    #[test]
    fn a_withdrawn_publish_holds_nothing_back_and_the_position_never_passes_the_read() {
        let mut it = Inflight::new(5);
        it.handed(Some(6));
        it.withdrawn();
        assert_eq!(it.position(), 5);
        it.read_through(6);
        assert_eq!(it.position(), 6);
        // An acknowledgement of an unknown packet changes nothing.
        it.acked(9);
        assert_eq!(it.position(), 6);
    }
}
