//! What each connection listens to, and which pushed changes it has
//! already been given.
//!
//! A connection subscribes with `start` requests: to all flags, to every
//! company or user (replicator mode), or to single companies and users
//! (direct mode). Each subscription remembers the stream position from
//! which it has delivered everything that matches it. That position is what
//! makes replay exact when a reconnecting client sends several `start`
//! requests with the same `replay_from`: a change already delivered through
//! one subscription (live or replayed) is not replayed again for another.

use super::stream_id::StreamId;

/// What a pushed change is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topic {
    /// One flag (created, changed or deleted).
    Flag,
    /// The company with this id.
    Company(String),
    /// The user with this id.
    User(String),
}

/// What a subscription listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// Every flag change (`rulesengine.Flags`).
    Flags,
    /// Every company (`rulesengine.Companies`).
    AllCompanies,
    /// Every user (`rulesengine.Users`).
    AllUsers,
    /// One company (`rulesengine.Company` with keys), by id.
    Company(String),
    /// One user (`rulesengine.User` with keys), by id.
    User(String),
}

impl Subject {
    pub(crate) fn matches(&self, topic: &Topic) -> bool {
        match (self, topic) {
            (Subject::Flags, Topic::Flag)
            | (Subject::AllCompanies, Topic::Company(_))
            | (Subject::AllUsers, Topic::User(_)) => true,
            (Subject::Company(a), Topic::Company(b)) | (Subject::User(a), Topic::User(b)) => a == b,
            _ => false,
        }
    }
}

/// One connection's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    /// Each subject with the position after which every matching change has
    /// been delivered (`None`: every change ever issued).
    entries: Vec<(Subject, Option<StreamId>)>,
}

impl Subscriptions {
    /// Whether a live change about `topic` is for this connection.
    pub(crate) fn wants(&self, topic: &Topic) -> bool {
        self.entries.iter().any(|(s, _)| s.matches(topic))
    }

    /// Whether the change `id` about `topic` has been (or is being)
    /// delivered through a current subscription.
    pub(crate) fn delivered(&self, id: StreamId, topic: &Topic) -> bool {
        self.entries
            .iter()
            .any(|(s, after)| s.matches(topic) && after.is_none_or(|a| id > a))
    }

    /// Subscribes to `subject`, with every matching change after `after`
    /// delivered. Subscribing again keeps the earlier of the two positions.
    pub(crate) fn add(&mut self, subject: Subject, after: Option<StreamId>) {
        match self.entries.iter_mut().find(|(s, _)| *s == subject) {
            Some((_, existing)) => {
                *existing = match (*existing, after) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                };
            }
            None => self.entries.push((subject, after)),
        }
    }

    /// Unsubscribes; false if there was no such subscription.
    pub(crate) fn remove(&mut self, subject: &Subject) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(s, _)| s != subject);
        self.entries.len() != before
    }

    /// The subjects, in subscription order.
    #[cfg(test)]
    pub(crate) fn subjects(&self) -> impl Iterator<Item = &Subject> {
        self.entries.iter().map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> StreamId {
        StreamId::new(100, n)
    }

    #[test]
    fn subjects_match_their_topics_only() {
        let acme = Topic::Company("comp_1".into());
        assert!(Subject::AllCompanies.matches(&acme));
        assert!(Subject::Company("comp_1".into()).matches(&acme));
        assert!(!Subject::Company("comp_2".into()).matches(&acme));
        assert!(!Subject::User("comp_1".into()).matches(&acme));
        assert!(!Subject::Flags.matches(&acme));
        assert!(Subject::Flags.matches(&Topic::Flag));
        assert!(!Subject::AllUsers.matches(&Topic::Flag));
    }

    #[test]
    fn delivery_is_tracked_per_subject_from_its_position() {
        let mut subs = Subscriptions::default();
        subs.add(Subject::Flags, Some(id(5)));
        assert!(subs.wants(&Topic::Flag));
        assert!(!subs.wants(&Topic::User("u".into())));
        assert!(!subs.delivered(id(5), &Topic::Flag));
        assert!(subs.delivered(id(6), &Topic::Flag));
        subs.add(Subject::Flags, Some(id(2)));
        assert!(
            subs.delivered(id(3), &Topic::Flag),
            "the earlier position wins"
        );
        subs.add(Subject::Flags, Some(id(9)));
        assert!(subs.delivered(id(3), &Topic::Flag));
        subs.add(Subject::Flags, None);
        assert!(subs.delivered(id(0), &Topic::Flag));
        assert!(subs.remove(&Subject::Flags));
        assert!(!subs.remove(&Subject::Flags));
        assert!(!subs.delivered(id(6), &Topic::Flag));
        assert_eq!(subs.subjects().count(), 0);
    }
}
