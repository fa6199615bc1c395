//! The messages of the `webcall` data channel (PROTOCOL.md, "The `webcall`
//! data channel"): how the channel is set up, and encoding and parsing its
//! JSON messages with their limits. Pure: no channel, no clock (the caller
//! passes the time in).
//!
//! A received message is either understood ([`Parsed::Chat`],
//! [`Parsed::ChatReceived`], [`Parsed::Screen`]) or ignored
//! ([`Parsed::Ignored`], with the reason): not JSON, no string `type`, a
//! type we do not know, over [`MAX_MESSAGE_BYTES`], a `chat` outside the
//! limits, a `chat_received` without its id or a `screen` without its
//! boolean. Only a `chat` is answered, with its receipt
//! ([`encode_chat_received`]).
//!
//! ```
//! use webcall_core::call::channel::{ChatMessage, Parsed, parse};
//! let sent = ChatMessage::new("Привет! Can you hear me?", 1_796_292_000_123)?;
//! let wire = sent.encode();
//! assert_eq!(parse(wire.as_bytes()), Parsed::Chat(sent));
//! assert!(matches!(parse(br#"{"type":"reaction","emoji":"+1"}"#), Parsed::Ignored(_)));
//! # Ok::<(), webcall_core::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The channel's label.
pub const LABEL: &str = "webcall";
/// The channel's stream id: it is negotiated (both sides create it before
/// the first offer), never announced in-band.
pub const CHANNEL_ID: u16 = 0;
/// Longer messages are ignored unread (64 KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// A chat text holds at most this many characters (Unicode code points).
pub const MAX_CHAT_CHARS: usize = 4000;
/// A chat id holds at most this many characters.
pub const MAX_CHAT_ID_CHARS: usize = 64;

/// A chat message, as sent or received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique per sender (ours: 16 random hex digits), at most
    /// [`MAX_CHAT_ID_CHARS`] characters.
    pub id: String,
    /// The text, 1 to [`MAX_CHAT_CHARS`] characters. Plain text: show it
    /// as such, never as markup.
    pub text: String,
    /// When it was sent, ms since the Unix epoch, by the sender's clock.
    pub sent_at: u64,
}

/// Why a received message was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    /// Over [`MAX_MESSAGE_BYTES`].
    TooLong,
    /// Not a JSON object with a string `type` (binary or not UTF-8 too).
    NotJson,
    /// A `type` this version does not know.
    UnknownType,
    /// A `chat` with missing or mistyped fields, an empty text, a text
    /// over [`MAX_CHAT_CHARS`] or an id over [`MAX_CHAT_ID_CHARS`].
    BadChat,
    /// A `screen` without a boolean `sharing`.
    BadScreen,
    /// A `chat_received` without an id of 1 to [`MAX_CHAT_ID_CHARS`]
    /// characters.
    BadReceipt,
}

/// What a received message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parsed {
    /// A chat message within the limits.
    Chat(ChatMessage),
    /// The other side's receipt for our chat message `id`: it arrived.
    ChatReceived {
        /// The [`ChatMessage::id`] it confirms.
        id: String,
    },
    /// The other side started (`true`) or stopped (`false`) sharing its
    /// screen on the screen video section (PROTOCOL.md, "Screen sharing").
    Screen {
        /// True while the share runs.
        sharing: bool,
    },
    /// Something to ignore, and why.
    Ignored(Ignored),
}

/// The wire form: one JSON object tagged by `type`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Chat(ChatMessage),
    ChatReceived { id: String },
    Screen { sharing: bool },
}

/// The wire form of a `screen` message: sent when a screen share starts
/// or stops, and again when a new channel opens while one runs.
pub fn encode_screen(sharing: bool) -> String {
    serde_json::to_string(&Wire::Screen { sharing }).expect("a screen message serialises")
}

/// The wire form of a `chat_received`: the receipt for the chat message
/// `id`, sent for every copy of it that arrives.
pub fn encode_chat_received(id: &str) -> String {
    serde_json::to_string(&Wire::ChatReceived { id: id.to_owned() }).expect("a receipt serialises")
}

/// Checks a chat text against the limits; the error says what to change.
pub fn check_text(text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(Error::ChatEmpty);
    }
    let chars = text.chars().count();
    if chars > MAX_CHAT_CHARS {
        return Err(Error::ChatTooLong {
            chars,
            limit: MAX_CHAT_CHARS,
        });
    }
    Ok(())
}

impl ChatMessage {
    /// A new message to send, with a fresh random id; fails with
    /// [`Error::ChatEmpty`] or [`Error::ChatTooLong`] when the text is
    /// outside the limits.
    pub fn new(text: impl Into<String>, sent_at: u64) -> Result<Self> {
        let text = text.into();
        check_text(&text)?;
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        let id = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { id, text, sent_at })
    }

    /// The message as sent on the channel: one JSON text.
    pub fn encode(&self) -> String {
        serde_json::to_string(&Wire::Chat(self.clone())).expect("a chat message serialises")
    }

    fn within_limits(&self) -> bool {
        check_text(&self.text).is_ok()
            && self.id.chars().count() <= MAX_CHAT_ID_CHARS
            && !self.id.is_empty()
    }
}

/// Reads one received message (its bytes, text or binary alike).
pub fn parse(data: &[u8]) -> Parsed {
    if data.len() > MAX_MESSAGE_BYTES {
        return Parsed::Ignored(Ignored::TooLong);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return Parsed::Ignored(Ignored::NotJson);
    };
    match value.get("type").and_then(|t| t.as_str()) {
        None => Parsed::Ignored(Ignored::NotJson),
        Some("chat") => match serde_json::from_value::<Wire>(value) {
            Ok(Wire::Chat(chat)) if chat.within_limits() => Parsed::Chat(chat),
            _ => Parsed::Ignored(Ignored::BadChat),
        },
        Some("chat_received") => match value.get("id").and_then(|v| v.as_str()) {
            Some(id) if !id.is_empty() && id.chars().count() <= MAX_CHAT_ID_CHARS => {
                Parsed::ChatReceived { id: id.to_owned() }
            }
            _ => Parsed::Ignored(Ignored::BadReceipt),
        },
        Some("screen") => match value.get("sharing").and_then(|v| v.as_bool()) {
            Some(sharing) => Parsed::Screen { sharing },
            None => Parsed::Ignored(Ignored::BadScreen),
        },
        Some(_) => Parsed::Ignored(Ignored::UnknownType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in PROTOCOL.md parses to what it says.
    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../PROTOCOL.md");
        let section = doc
            .split("### The `webcall` data channel")
            .nth(1)
            .expect("PROTOCOL.md has the data channel section");
        let json = section
            .split("```json\n")
            .nth(1)
            .and_then(|s| s.split("\n```").next())
            .expect("a JSON example");
        let Parsed::Chat(chat) = parse(json.as_bytes()) else {
            panic!("{json}")
        };
        assert_eq!(chat.id, "5f0c8a1e2b3d4c6f");
        assert_eq!(chat.text, "Привет! Can you hear me?");
        assert_eq!(chat.sent_at, 1_796_292_000_123);
        let again: serde_json::Value = serde_json::from_str(&chat.encode()).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
        let receipt = section
            .split("```json\n")
            .skip(1)
            .filter_map(|s| s.split("\n```").next())
            .find(|s| s.contains("chat_received"))
            .expect("a receipt example");
        assert_eq!(
            parse(receipt.as_bytes()),
            Parsed::ChatReceived {
                id: chat.id.clone()
            }
        );
        assert_eq!(encode_chat_received(&chat.id), receipt);
    }

    #[test]
    fn new_messages_check_the_text_and_get_ids() {
        let a = ChatMessage::new("hi", 1).unwrap();
        let b = ChatMessage::new("hi", 1).unwrap();
        assert_eq!(a.id.len(), 16);
        assert_ne!(a.id, b.id);
        assert!(matches!(ChatMessage::new("", 1), Err(Error::ChatEmpty)));
        // Code points, not bytes: 4000 two-byte letters are fine.
        let long = "ж".repeat(MAX_CHAT_CHARS);
        assert!(ChatMessage::new(long.clone(), 1).is_ok());
        let err = ChatMessage::new(long + "ж", 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ChatTooLong {
                    chars: 4001,
                    limit: 4000
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("4000"), "{err}");
        // The longest text, even in four-byte characters, fits a message.
        let emoji = ChatMessage::new("😀".repeat(MAX_CHAT_CHARS), 1).unwrap();
        assert!(emoji.encode().len() < MAX_MESSAGE_BYTES);
        assert_eq!(parse(emoji.encode().as_bytes()), Parsed::Chat(emoji));
    }

    #[test]
    fn what_is_not_understood_is_ignored() {
        let ignored = |s: &[u8]| match parse(s) {
            Parsed::Ignored(why) => why,
            other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(s)),
        };
        assert_eq!(ignored(b"hello"), Ignored::NotJson);
        assert_eq!(ignored(&[0xff, 0xfe, 0x00]), Ignored::NotJson);
        assert_eq!(ignored(b"[1,2]"), Ignored::NotJson);
        assert_eq!(ignored(br#"{"text":"no type"}"#), Ignored::NotJson);
        assert_eq!(ignored(br#"{"type":7}"#), Ignored::NotJson);
        assert_eq!(ignored(br#"{"type":"typing"}"#), Ignored::UnknownType);
        assert_eq!(ignored(br#"{"type":"screen"}"#), Ignored::BadScreen);
        assert_eq!(
            parse(encode_chat_received("5f0c8a1e2b3d4c6f").as_bytes()),
            Parsed::ChatReceived {
                id: "5f0c8a1e2b3d4c6f".to_owned()
            }
        );
        assert_eq!(ignored(br#"{"type":"chat_received"}"#), Ignored::BadReceipt);
        assert_eq!(
            ignored(br#"{"type":"chat_received","id":""}"#),
            Ignored::BadReceipt
        );
        assert_eq!(
            ignored(format!(r#"{{"type":"chat_received","id":"{}"}}"#, "i".repeat(65)).as_bytes()),
            Ignored::BadReceipt
        );
        assert_eq!(
            ignored(br#"{"type":"screen","sharing":"yes"}"#),
            Ignored::BadScreen
        );
        assert_eq!(
            parse(encode_screen(true).as_bytes()),
            Parsed::Screen { sharing: true }
        );
        assert_eq!(
            parse(br#"{"type":"screen","sharing":false,"extra":1}"#),
            Parsed::Screen { sharing: false }
        );
        let chat = |id: &str, text: &str| {
            serde_json::json!({"type": "chat", "id": id, "text": text, "sent_at": 5})
                .to_string()
                .into_bytes()
        };
        assert_eq!(ignored(&chat("a", "")), Ignored::BadChat);
        assert_eq!(
            ignored(&chat("a", &"x".repeat(MAX_CHAT_CHARS + 1))),
            Ignored::BadChat
        );
        assert_eq!(ignored(&chat(&"i".repeat(65), "x")), Ignored::BadChat);
        assert_eq!(ignored(&chat("", "x")), Ignored::BadChat);
        assert_eq!(
            ignored(br#"{"type":"chat","id":"a","text":"x","sent_at":"soon"}"#),
            Ignored::BadChat
        );
        assert_eq!(
            ignored(br#"{"type":"chat","id":"a","text":"x"}"#),
            Ignored::BadChat
        );
        assert_eq!(
            ignored(br#"{"type":"chat","id":"a","text":"x","sent_at":-1}"#),
            Ignored::BadChat
        );
        // Within the limits, an id of 64 characters and unknown extra fields are fine.
        let mut ok = serde_json::json!({"type": "chat", "id": "i".repeat(64), "text": "x", "sent_at": 5, "extra": true});
        assert!(matches!(parse(ok.to_string().as_bytes()), Parsed::Chat(_)));
        // Past 64 KiB nothing is read, however valid.
        ok["pad"] = serde_json::Value::String(" ".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(ignored(ok.to_string().as_bytes()), Ignored::TooLong);
        // Markup is plain text: it comes through unchanged.
        let Parsed::Chat(c) = parse(&chat("a", "<b>hi</b>\nthere")) else {
            panic!()
        };
        assert_eq!(c.text, "<b>hi</b>\nthere");
    }
}
