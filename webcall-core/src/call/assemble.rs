//! Reassembling H.264 access units from RTP payloads, within a size limit.
//!
//! The other side marks the last packet of each access unit with the RTP
//! marker bit. A sender that never sets it (broken or hostile), or that
//! starts a fragmented NAL unit and never ends it, would otherwise make the
//! reassembly buffer grow without end. [`Assembler`] counts the payload
//! bytes it has taken in since the last access unit ended; past
//! [`MAX_ACCESS_UNIT_BYTES`] it throws them away (its own buffer and the
//! depacketizer's) and asks for a key frame, then keeps discarding until
//! the next marker. No IO: the caller feeds packets and carries out what
//! each [`Pushed`] says.

use bytes::Bytes;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;

/// The largest H.264 access unit (one picture, Annex-B) the call engine
/// reassembles: 2 MiB. A 1080p key frame at a high bitrate is a few hundred
/// KiB, so this only cuts off senders that never end their pictures.
pub const MAX_ACCESS_UNIT_BYTES: usize = 2 * 1024 * 1024;

/// Room kept for the next picture after one was thrown away.
const KEEP_CAPACITY: usize = 64 * 1024;

/// What one RTP packet led to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// A complete access unit (Annex-B) for the decoder.
    pub access_unit: Option<Vec<u8>>,
    /// Ask the sender for a key frame: a picture was lost or thrown away.
    pub request_key_frame: bool,
    /// The picture under way grew past the limit and was thrown away.
    pub dropped_oversized: bool,
}

/// Reassembles access units from the RTP packets of one H.264 stream.
#[derive(Debug)]
pub(crate) struct Assembler {
    depacketizer: H264Packet,
    buf: Vec<u8>,
    /// Payload bytes taken in since the last access unit ended: a bound on
    /// what `buf` and the depacketizer hold together.
    taken: usize,
    limit: usize,
    last_seq: Option<u16>,
    /// The picture under way is incomplete: drop it at its marker.
    broken: bool,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::with_limit(MAX_ACCESS_UNIT_BYTES)
    }
}

impl Assembler {
    /// An assembler that holds at most `limit` payload bytes per picture.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            depacketizer: H264Packet::default(),
            buf: Vec::new(),
            taken: 0,
            limit,
            last_seq: None,
            broken: false,
        }
    }

    /// Bytes held for the picture under way (at most the limit).
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.taken
    }

    /// Takes one RTP packet: its sequence number, marker bit and payload.
    pub fn push(&mut self, seq: u16, marker: bool, payload: &Bytes) -> Pushed {
        let mut out = Pushed::default();
        if self.last_seq.is_some_and(|l| seq != l.wrapping_add(1)) {
            // A gap (or reordering): this picture is incomplete.
            self.broken = true;
            out.request_key_frame = true;
        }
        self.last_seq = Some(seq);
        // Padding-only packets carry no media (and end nothing).
        if payload.is_empty() {
            return out;
        }
        if self.taken + payload.len() > self.limit {
            self.discard();
            self.broken = true;
            out.request_key_frame = true;
            out.dropped_oversized = true;
        } else {
            self.taken += payload.len();
            match self.depacketizer.depacketize(payload) {
                Ok(b) => self.buf.extend_from_slice(&b),
                Err(_) => self.broken = true,
            }
        }
        if marker {
            if !self.broken && !self.buf.is_empty() {
                out.access_unit = Some(std::mem::take(&mut self.buf));
                self.taken = 0;
            } else {
                self.discard();
            }
            self.broken = false;
        }
        out
    }

    /// Forgets the picture under way, and the memory it took.
    fn discard(&mut self) {
        self.buf.clear();
        self.buf.shrink_to(KEEP_CAPACITY);
        self.depacketizer = H264Packet::default();
        self.taken = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A single-NAL-unit payload (an IDR slice) of `len` bytes.
    fn nal(len: usize) -> Bytes {
        let mut v = vec![0xAB; len];
        v[0] = 0x65;
        Bytes::from(v)
    }

    /// FU-A fragments of one IDR slice: start, middle, end.
    fn fu_a(start: bool, end: bool, len: usize) -> Bytes {
        let mut v = vec![0xCD; len];
        v[0] = 0x7C; // FU indicator: NRI 3, type 28
        v[1] = 0x05 | if start { 0x80 } else { 0 } | if end { 0x40 } else { 0 };
        Bytes::from(v)
    }

    #[test]
    fn a_marked_picture_comes_out_whole() {
        let mut a = Assembler::default();
        assert_eq!(a.push(1, false, &nal(100)), Pushed::default());
        let out = a.push(2, true, &nal(50));
        let au = out.access_unit.expect("a complete access unit");
        // Two NAL units, each behind an Annex-B start code.
        assert_eq!(au.len(), 4 + 100 + 4 + 50);
        assert_eq!(&au[..5], &[0, 0, 0, 1, 0x65]);
        assert!(!out.request_key_frame && !out.dropped_oversized);
        assert_eq!(a.buffered(), 0);
    }

    #[test]
    fn a_gap_drops_the_picture_and_asks_for_a_key_frame() {
        let mut a = Assembler::default();
        a.push(10, false, &nal(100));
        let out = a.push(12, true, &nal(100));
        assert!(out.request_key_frame);
        assert_eq!(out.access_unit, None);
        // The next picture is fine again.
        let out = a.push(13, true, &nal(100));
        assert!(out.access_unit.is_some());
    }

    #[test]
    fn padding_neither_counts_nor_ends_a_picture() {
        let mut a = Assembler::default();
        a.push(1, false, &nal(10));
        let out = a.push(2, true, &Bytes::new());
        assert_eq!(out, Pushed::default());
        assert!(a.push(3, true, &nal(10)).access_unit.is_some());
    }

    #[test]
    fn a_picture_without_an_end_stays_within_the_limit() {
        let limit = 64 * 1024;
        let mut a = Assembler::with_limit(limit);
        let mut drops = 0;
        let mut requests = 0;
        // 100 limits' worth of packets and never a marker.
        for seq in 0..(100 * limit / 1000) as u16 {
            let out = a.push(seq, false, &nal(1000));
            assert_eq!(out.access_unit, None);
            assert!(a.buffered() <= limit, "{} buffered", a.buffered());
            assert!(a.buf.capacity() <= 2 * limit, "{}", a.buf.capacity());
            drops += usize::from(out.dropped_oversized);
            requests += usize::from(out.request_key_frame);
        }
        assert!(drops >= 90, "{drops} pictures dropped");
        assert_eq!(requests, drops);
        // The marker ends the broken picture; then the stream recovers.
        assert_eq!(a.push(6600, true, &nal(10)).access_unit, None);
        assert!(a.push(6601, true, &nal(10)).access_unit.is_some());
    }

    #[test]
    fn an_endless_fragmented_unit_is_cut_off_too() {
        // The depacketizer keeps FU-A fragments to itself until the end
        // fragment: the limit counts them as well.
        let limit = 16 * 1024;
        let mut a = Assembler::with_limit(limit);
        a.push(0, false, &fu_a(true, false, 1000));
        let mut dropped = false;
        for seq in 1..100u16 {
            let out = a.push(seq, false, &fu_a(false, false, 1000));
            dropped |= out.dropped_oversized;
            assert!(a.buffered() <= limit);
        }
        assert!(dropped);
        // A whole fragmented picture after a marker comes out again.
        a.push(100, true, &nal(10));
        a.push(101, false, &fu_a(true, false, 500));
        let au = a.push(102, true, &fu_a(false, true, 500)).access_unit;
        // Start code, the rebuilt NAL header, then both fragments' data.
        assert_eq!(au.map(|v| v.len()), Some(4 + 1 + 498 + 498));
    }
}
