//! The bounded duplicate filter every detector keeps.
//!
//! JetStream delivers at least once, so an event may arrive twice (a redelivery after a missed
//! ack, an agent re-send that fell outside the stream's duplicate window). A detector remembers
//! the last `capacity` event ids and ignores an event it has already applied. The same bounded
//! set also remembers other keys (the propagation detector's settled objects).

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

use schema::EventId;

/// The last `capacity` keys (event ids by default), oldest forgotten first.
#[derive(Debug, Clone)]
pub struct SeenSet<T = EventId> {
    capacity: usize,
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: Hash + Eq + Copy> SeenSet<T> {
    /// An empty set remembering at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        SeenSet {
            capacity,
            set: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// Records `id`; returns `false` if it was already there (a duplicate).
    pub fn insert(&mut self, id: T) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: &T) -> bool {
        self.set.contains(id)
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EventId {
        EventId([n; 32])
    }

    #[test]
    fn a_repeated_id_is_a_duplicate() {
        let mut s = SeenSet::new(10);
        assert!(s.insert(id(1)));
        assert!(!s.insert(id(1)));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_oldest_id_is_forgotten_past_capacity() {
        let mut s = SeenSet::new(2);
        s.insert(id(1));
        s.insert(id(2));
        s.insert(id(3));
        assert_eq!(s.len(), 2);
        assert!(s.insert(id(1)), "id 1 was forgotten");
        assert!(!s.insert(id(3)));
    }
}
