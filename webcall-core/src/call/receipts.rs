//! Chat receipts (PROTOCOL.md, "The `webcall` data channel"): the chat
//! messages we sent that the other side has not yet confirmed with a
//! `chat_received` (sent again, in order, when a new peer connection's
//! channel opens), and the ids of the messages we received (a message sent
//! again is confirmed again but shown once). Plain data: the edge in
//! `chat` sends and reads.

use std::collections::{HashSet, VecDeque};

use super::channel::ChatMessage;

/// Sent messages kept until the other side confirms them; past this the
/// oldest is forgotten (its receipt is most likely on its way).
pub const UNCONFIRMED_LIMIT: usize = 100;

/// Received ids remembered to spot a message sent again.
pub const SEEN_LIMIT: usize = 1000;

/// Our messages handed to a channel and not yet confirmed, oldest first.
#[derive(Debug, Default)]
pub struct Unconfirmed {
    messages: VecDeque<ChatMessage>,
}

impl Unconfirmed {
    /// `message` was handed to a channel (or is about to be): keep it until
    /// it is confirmed. Returns the message forgotten to stay within
    /// [`UNCONFIRMED_LIMIT`], if any.
    pub fn sent(&mut self, message: ChatMessage) -> Option<ChatMessage> {
        if self.messages.iter().any(|m| m.id == message.id) {
            return None;
        }
        self.messages.push_back(message);
        if self.messages.len() > UNCONFIRMED_LIMIT {
            self.messages.pop_front()
        } else {
            None
        }
    }

    /// The other side confirmed `id`: true when it was waiting here.
    pub fn confirmed(&mut self, id: &str) -> bool {
        match self.messages.iter().position(|m| m.id == id) {
            Some(i) => {
                self.messages.remove(i);
                true
            }
            None => false,
        }
    }

    /// What to send again on a new channel, oldest first.
    pub fn to_send_again(&self) -> Vec<ChatMessage> {
        self.messages.iter().cloned().collect()
    }

    /// How many wait for their receipt.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when every sent message is confirmed.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// The ids of the last [`SEEN_LIMIT`] messages received.
#[derive(Debug, Default)]
pub struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Seen {
    /// True the first time `id` arrives (show the message); false when it
    /// is a message sent again.
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        if self.order.len() > SEEN_LIMIT
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> ChatMessage {
        ChatMessage::new(text, 1).unwrap()
    }

    #[test]
    fn unconfirmed_messages_are_sent_again_in_order_until_confirmed() {
        let mut waiting = Unconfirmed::default();
        let (a, b, c) = (message("a"), message("b"), message("c"));
        for m in [&a, &b, &c] {
            assert_eq!(waiting.sent(m.clone()), None);
        }
        // Sending one again (on a new channel) keeps one copy.
        assert_eq!(waiting.sent(b.clone()), None);
        assert_eq!(waiting.len(), 3);
        assert!(waiting.confirmed(&b.id));
        assert!(!waiting.confirmed(&b.id), "a second receipt finds nothing");
        assert!(!waiting.confirmed("not ours"));
        assert_eq!(waiting.to_send_again(), vec![a.clone(), c.clone()]);
        assert!(waiting.confirmed(&a.id) && waiting.confirmed(&c.id));
        assert!(waiting.is_empty());
    }

    #[test]
    fn unconfirmed_messages_are_bounded_by_forgetting_the_oldest() {
        let mut waiting = Unconfirmed::default();
        let first = message("first");
        assert_eq!(waiting.sent(first.clone()), None);
        for i in 1..UNCONFIRMED_LIMIT {
            assert_eq!(waiting.sent(message(&i.to_string())), None);
        }
        assert_eq!(waiting.sent(message("one more")), Some(first));
        assert_eq!(waiting.len(), UNCONFIRMED_LIMIT);
        assert_eq!(waiting.to_send_again()[0].text, "1");
    }

    #[test]
    fn a_message_sent_again_is_seen_once_within_the_last_thousand() {
        let mut seen = Seen::default();
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"));
        for i in 0..SEEN_LIMIT - 1 {
            assert!(seen.first_time(&i.to_string()));
        }
        assert!(!seen.first_time("a"), "a is among the last {SEEN_LIMIT}");
        assert!(seen.first_time("one more"));
        assert!(seen.first_time("a"), "a has been forgotten");
        assert_eq!(seen.order.len(), SEEN_LIMIT);
        assert_eq!(seen.ids.len(), SEEN_LIMIT);
    }
}
