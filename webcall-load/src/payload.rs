//! What the participants send: offers, answers and candidates built from
//! webcall-core's message types, each carrying a [`Stamp`] inside its SDP
//! or candidate text, which the server relays without looking.
//!
//! A stamp reads `wl1:<room>:<slot>:<seq>:<sent µs>:<p|a>`: the room's
//! index, the sender's seat in it (0 or 1), the sender's sequence number,
//! when it was sent (microseconds on this process's clock) and whether the
//! other participant was present when it was sent (`p`) or known to be
//! away (`a`).

use webcall_core::protocol::{ClientMessage, IceCandidate, ServerMessage};
use webcall_core::token::ParticipantId;

const PREFIX: &str = "wl1:";

/// The rest of an offer or answer: the shape and size (about 1 KiB) of a
/// real audio and video description. The server only relays it.
const SDP_BODY: &str = "t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:h1Xo\r\n\
a=ice-pwd:Qz4t8m1cPq2Lw0ZbN7yHs3Vd\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CD:87:32:BE:DD:8C:66:0B:B9:4B:12:5C:24:6E:1A:5F:E3:60:7C:1D\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:h1Xo\r\n\
a=ice-pwd:Qz4t8m1cPq2Lw0ZbN7yHs3Vd\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CD:87:32:BE:DD:8C:66:0B:B9:4B:12:5C:24:6E:1A:5F:E3:60:7C:1D\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 goog-remb\r\n\
a=rtcp-fb:102 ccm fir\r\n\
a=rtcp-fb:102 nack\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

/// Who sent a message, which one it is and when it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The room's index in this run.
    pub room: u32,
    /// The sender's seat: 0 (joined first) or 1.
    pub slot: u8,
    /// The sender's sequence number, counted over the whole run (rejoins
    /// included), from 0.
    pub seq: u64,
    /// When it was sent, in microseconds on this process's clock.
    pub sent_us: u64,
    /// True when the other participant was present when it was sent:
    /// such a message must arrive. Messages sent while the other side was
    /// known to be away may or may not.
    pub to_present: bool,
}

impl Stamp {
    fn text(&self) -> String {
        format!(
            "{PREFIX}{}:{}:{}:{}:{}",
            self.room,
            self.slot,
            self.seq,
            self.sent_us,
            if self.to_present { 'p' } else { 'a' }
        )
    }

    /// Finds the stamp in an SDP or candidate text.
    pub fn find(text: &str) -> Option<Self> {
        let start = text.find(PREFIX)? + PREFIX.len();
        let rest = &text[start..];
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let mut fields = rest[..end].split(':');
        let stamp = Self {
            room: fields.next()?.parse().ok()?,
            slot: fields.next()?.parse().ok()?,
            seq: fields.next()?.parse().ok()?,
            sent_us: fields.next()?.parse().ok()?,
            to_present: match fields.next()? {
                "p" => true,
                "a" => false,
                _ => return None,
            },
        };
        fields.next().is_none().then_some(stamp)
    }

    /// The message that carries this stamp: mostly candidates, as in a
    /// real call, with an offer and an answer in every ten.
    pub fn message(&self) -> ClientMessage {
        let stamp = self.text();
        match self.seq % 10 {
            0 => ClientMessage::Offer {
                sdp: format!(
                    "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns={stamp}\r\n{SDP_BODY}",
                    self.seq
                ),
            },
            5 => ClientMessage::Answer {
                sdp: format!(
                    "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns={stamp}\r\n{SDP_BODY}",
                    self.seq
                ),
            },
            _ => ClientMessage::Candidate {
                candidate: Some(IceCandidate {
                    candidate: format!(
                        "candidate:1 1 udp 2122260223 127.0.0.1 {} typ host generation 0 {stamp}",
                        50_000 + self.seq % 10_000
                    ),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                    username_fragment: Some("h1Xo".into()),
                }),
            },
        }
    }
}

/// A relayed message as a receiver sees it.
#[derive(Debug)]
pub struct Relayed<'a> {
    /// The `from` the server added.
    pub from: &'a ParticipantId,
    /// The stamp inside, `None` when it has none (not ours: misrouted).
    pub stamp: Option<Stamp>,
}

impl<'a> Relayed<'a> {
    /// The relayed message in `message`, if it is an offer, an answer or a
    /// candidate.
    pub fn of(message: &'a ServerMessage) -> Option<Self> {
        let (from, text) = match message {
            ServerMessage::Offer { from, sdp } | ServerMessage::Answer { from, sdp } => {
                (from, sdp.as_str())
            }
            ServerMessage::Candidate { from, candidate } => (
                from,
                candidate.as_ref().map_or("", |c| c.candidate.as_str()),
            ),
            _ => return None,
        };
        Some(Self {
            from,
            stamp: Stamp::find(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webcall_core::protocol::MAX_CLIENT_MESSAGE_BYTES;

    #[test]
    fn stamps_survive_every_message_kind_and_the_relay() {
        let from: ParticipantId = "0123456789abcdef".parse().unwrap();
        for seq in 0..10 {
            let stamp = Stamp {
                room: 4_999,
                slot: 1,
                seq,
                sent_us: 123_456_789,
                to_present: seq % 2 == 0,
            };
            let sent = stamp.message().encode();
            assert!(sent.len() < MAX_CLIENT_MESSAGE_BYTES);
            // What the server does: decode, add `from`, encode.
            let relayed = match ClientMessage::decode(&sent).unwrap() {
                ClientMessage::Offer { sdp } => ServerMessage::Offer {
                    from: from.clone(),
                    sdp,
                },
                ClientMessage::Answer { sdp } => ServerMessage::Answer {
                    from: from.clone(),
                    sdp,
                },
                ClientMessage::Candidate { candidate } => ServerMessage::Candidate {
                    from: from.clone(),
                    candidate,
                },
                other => panic!("{other:?}"),
            };
            let received = ServerMessage::decode(&relayed.encode()).unwrap();
            let seen = Relayed::of(&received).unwrap();
            assert_eq!(seen.from, &from);
            assert_eq!(seen.stamp, Some(stamp));
        }
    }

    #[test]
    fn foreign_text_has_no_stamp() {
        for text in [
            "",
            "v=0\r\n",
            "wl1:1:0:5:7",
            "wl1:1:0:5:7:x",
            "wl1:1:0:5:7:p:9",
            "wl1:a:0:5:7:p",
        ] {
            assert_eq!(Stamp::find(text), None, "{text}");
        }
        assert!(Stamp::find("s=wl1:1:0:5:7:p\r\nt=0 0").is_some());
    }
}
