//! The call's verification code (PROTOCOL.md, "The verification code"):
//! six digits both people can read to each other to check that nobody in
//! the middle, the signaling server included, swapped the DTLS keys.
//!
//! Each side works it out from the two certificate fingerprints *it saw*
//! in the negotiation (its own description's and the other side's), so a
//! relay that rewrites a fingerprint makes the two codes differ. Pure
//! functions, no IO.
//!
//! ```
//! use webcall_core::call::verify::verification_code;
//! let ours = "v=0\r\na=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n";
//! let theirs = "v=0\r\na=fingerprint:sha-256 C7:96:5A:21:7D:92:3F:12:90:0E:B3:4A:61:AD:0C:3E:FF:18:42:8B:7E:55:9C:01:D4:A2:6F:33:B8:E7:90:1C\r\n";
//! assert_eq!(verification_code(ours, theirs).as_deref(), Some("125 392"));
//! // The other side computes it from the same two, the other way round.
//! assert_eq!(verification_code(theirs, ours), verification_code(ours, theirs));
//! ```

use sha2::{Digest, Sha256};

/// The value of the first `a=fingerprint:` line of a session description
/// (hash name and hex as written, e.g. `sha-256 6B:8B:...`), with trailing
/// whitespace (a `\r` included) removed. `None` when there is none.
pub fn first_fingerprint(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=fingerprint:"))
        .map(str::trim_end)
}

/// The code for two fingerprint values, as shown: six digits in two groups
/// of three, e.g. `125 392`. The order of the two does not matter.
pub fn code_from_fingerprints(a: &str, b: &str) -> String {
    let (a, b) = (a.trim_end(), b.trim_end());
    let (first, second) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let digest = Sha256::new()
        .chain_update(first.as_bytes())
        .chain_update(b"\n")
        .chain_update(second.as_bytes())
        .finalize();
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}

/// The code for a negotiation, from our session description and theirs;
/// `None` when either names no fingerprint.
pub fn verification_code(local_sdp: &str, remote_sdp: &str) -> Option<String> {
    Some(code_from_fingerprints(
        first_fingerprint(local_sdp)?,
        first_fingerprint(remote_sdp)?,
    ))
}

/// The code as a plain six-digit string (`125392`), as `--stats-json`
/// writes it: the shown form without its space.
pub fn digits(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";
    const B: &str = "sha-256 C7:96:5A:21:7D:92:3F:12:90:0E:B3:4A:61:AD:0C:3E:FF:18:42:8B:7E:55:9C:01:D4:A2:6F:33:B8:E7:90:1C";

    /// The test vector, read from PROTOCOL.md itself.
    #[test]
    fn the_protocol_test_vector_gives_its_code() {
        let doc = include_str!("../../../PROTOCOL.md");
        let section = doc
            .split("### The verification code")
            .nth(1)
            .and_then(|s| s.split("Test vector:").nth(1))
            .expect("PROTOCOL.md has the verification code's test vector");
        let quoted: Vec<&str> = section
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| s.starts_with("sha-256 "))
            .collect();
        assert_eq!(quoted, [A, B], "the vector's fingerprints");
        let expected = section
            .split("give `")
            .nth(1)
            .and_then(|s| s.split('`').next())
            .expect("the vector's code");
        assert_eq!(code_from_fingerprints(quoted[0], quoted[1]), expected);
        assert_eq!(expected, "125 392");
        assert_eq!(code_from_fingerprints(B, A), "125 392");
        assert_eq!(digits("125 392"), "125392");
    }

    #[test]
    fn codes_come_from_whole_descriptions() {
        let local = format!(
            "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\na=fingerprint:{A}\r\nm=audio 9\r\na=fingerprint:sha-256 00:11\r\n"
        );
        let remote = format!("v=0\na=ice-ufrag:x\na=fingerprint:{B}   \n");
        assert_eq!(first_fingerprint(&local), Some(A), "CRLF lines");
        assert_eq!(
            first_fingerprint(&remote),
            Some(B),
            "LF lines, trailing blanks"
        );
        assert_eq!(
            verification_code(&local, &remote).as_deref(),
            Some("125 392")
        );
        assert_eq!(
            verification_code(&remote, &local).as_deref(),
            Some("125 392")
        );
    }

    #[test]
    fn no_fingerprint_no_code() {
        let with = format!("v=0\r\na=fingerprint:{A}\r\n");
        assert_eq!(verification_code("v=0\r\n", &with), None);
        assert_eq!(verification_code(&with, ""), None);
        // The attribute must start the line.
        assert_eq!(
            first_fingerprint("v=0\r\nx a=fingerprint:sha-256 AA\r\n"),
            None
        );
    }

    #[test]
    fn a_rewritten_fingerprint_changes_the_code_and_zeros_are_kept() {
        let other = A.replace("6B:8B", "6B:8C");
        assert_ne!(
            code_from_fingerprints(A, B),
            code_from_fingerprints(&other, B)
        );
        // Every code is six digits with a space, leading zeros included.
        for i in 0..200 {
            let code = code_from_fingerprints(&format!("sha-256 {i:02X}"), B);
            assert_eq!(code.len(), 7, "{code}");
            assert_eq!(code.as_bytes()[3], b' ', "{code}");
            assert_eq!(digits(&code).len(), 6, "{code}");
        }
    }
}
