//! smshub's message states in the words of capcom6's API (`Pending`, `Processed`, `Sent`,
//! `Delivered`, `Failed`, `Cancelled`), and the state of a message of that API (a group of
//! smshub messages, one per recipient) from its recipients'. The only place they meet.
//!
//! Pure: no I/O.

use serde::Serialize;

use crate::domain::MessageState;

/// A state of capcom6's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum CompatState {
    /// Stored, not yet taken by a device (`queued`, `dispatched`).
    Pending,
    /// A device took it (`accepted`).
    Processed,
    Sent,
    Delivered,
    /// It ended without success (`failed`, `expired`).
    Failed,
    Cancelled,
}

impl CompatState {
    pub const ALL: [CompatState; 6] = [
        CompatState::Pending,
        CompatState::Processed,
        CompatState::Sent,
        CompatState::Delivered,
        CompatState::Failed,
        CompatState::Cancelled,
    ];

    /// The state a smshub state is shown as.
    pub fn of(state: MessageState) -> CompatState {
        match state {
            MessageState::Queued | MessageState::Dispatched => CompatState::Pending,
            MessageState::Accepted => CompatState::Processed,
            MessageState::Sent => CompatState::Sent,
            MessageState::Delivered => CompatState::Delivered,
            MessageState::Failed | MessageState::Expired => CompatState::Failed,
            MessageState::Cancelled => CompatState::Cancelled,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompatState::Pending => "Pending",
            CompatState::Processed => "Processed",
            CompatState::Sent => "Sent",
            CompatState::Delivered => "Delivered",
            CompatState::Failed => "Failed",
            CompatState::Cancelled => "Cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<CompatState> {
        CompatState::ALL.into_iter().find(|it| it.as_str() == text)
    }

    /// How far along a message is: a group is as far as its least advanced recipient.
    fn rank(self) -> u8 {
        match self {
            CompatState::Pending => 0,
            CompatState::Processed => 1,
            CompatState::Sent => 2,
            // Ends, ordered among themselves by what a group of mixed ends is shown as.
            CompatState::Delivered => 3,
            CompatState::Failed => 4,
            CompatState::Cancelled => 5,
        }
    }

    /// The state of a group: its least advanced recipient's while any is on its way; once
    /// all have ended, `Delivered` if any was delivered, else `Failed` if any failed, else
    /// `Cancelled`. `Pending` for no recipient.
    pub fn of_group(states: impl IntoIterator<Item = CompatState>) -> CompatState {
        states
            .into_iter()
            .min_by_key(|it| it.rank())
            .unwrap_or(CompatState::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::CompatState::*;
    use super::*;

    #[test]
    fn every_smshub_state_has_one() {
        let table = [
            (MessageState::Queued, Pending),
            (MessageState::Dispatched, Pending),
            (MessageState::Accepted, Processed),
            (MessageState::Sent, Sent),
            (MessageState::Delivered, Delivered),
            (MessageState::Failed, Failed),
            (MessageState::Expired, Failed),
            (MessageState::Cancelled, Cancelled),
        ];
        assert_eq!(table.len(), MessageState::ALL.len());
        for (state, shown) in table {
            assert_eq!(CompatState::of(state), shown, "{state}");
        }
    }

    #[test]
    fn a_group_is_as_far_as_its_slowest_recipient() {
        let cases: &[(&[CompatState], CompatState)] = &[
            (&[], Pending),
            (&[Delivered], Delivered),
            (&[Delivered, Pending], Pending),
            (&[Sent, Delivered], Sent),
            (&[Processed, Sent], Processed),
            (&[Delivered, Failed], Delivered),
            (&[Failed, Cancelled], Failed),
            (&[Cancelled, Cancelled], Cancelled),
        ];
        for (states, want) in cases {
            assert_eq!(
                CompatState::of_group(states.iter().copied()),
                *want,
                "{states:?}"
            );
        }
    }
}
