//! Screen sharing's one rule about the session description (PROTOCOL.md,
//! "Screen sharing"): of a description's video sections, in order, the
//! first carries the camera and the second a shared screen. Pure text
//! work, no peer connection.
//!
//! ```
//! use webcall_core::call::screen::video_section_index;
//! let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
//!            m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\n\
//!            m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:2\r\n";
//! assert_eq!(video_section_index(sdp, "1"), Some(0)); // the camera
//! assert_eq!(video_section_index(sdp, "2"), Some(1)); // the screen
//! assert_eq!(video_section_index(sdp, "0"), None); // not video
//! ```

/// Of the video sections of `sdp`, in order, which one has `a=mid:{mid}`
/// (0: the camera, 1: the screen); `None` when no video section has it.
pub fn video_section_index(sdp: &str, mid: &str) -> Option<usize> {
    let mut video = None::<usize>;
    let mut in_video = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            in_video = media.starts_with("video ");
            if in_video {
                video = Some(video.map_or(0, |i| i + 1));
            }
        } else if in_video && line.strip_prefix("a=mid:") == Some(mid) {
            return video;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_counted_among_video_only() {
        let sdp = "v=0\nm=video 9 X 102\na=mid:v0\nm=application 9 X webrtc-datachannel\na=mid:d\n\
                   m=audio 9 X 111\na=mid:a\nm=video 9 X 102\na=mid:v1\nm=video 9 X 102\na=mid:v2\n";
        assert_eq!(video_section_index(sdp, "v0"), Some(0));
        assert_eq!(video_section_index(sdp, "v1"), Some(1));
        assert_eq!(video_section_index(sdp, "v2"), Some(2));
        assert_eq!(video_section_index(sdp, "a"), None);
        assert_eq!(video_section_index(sdp, "d"), None);
        assert_eq!(video_section_index(sdp, "v"), None);
        assert_eq!(video_section_index("", "0"), None);
    }
}
