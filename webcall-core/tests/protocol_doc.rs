//! PROTOCOL.md is the contract between the server, the browser and native
//! clients. This test reads the file itself: every JSON example in it must
//! decode into the Rust type it shows and encode back to the same JSON,
//! every message type its tables name must have an example, and the error
//! table must agree with [`ErrorCode`] on which codes are fatal. A change to
//! the types that the document does not follow (or the other way round)
//! fails here.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use webcall_core::protocol::{ClientMessage, CreatedRoom, ErrorCode, RoomInfo, ServerMessage};

const PROTOCOL: &str = include_str!("../../PROTOCOL.md");

/// One section of the document: its heading and its body.
fn section(heading: &str) -> &'static str {
    let start = PROTOCOL
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("PROTOCOL.md has a section {heading:?}"));
    let body = &PROTOCOL[start + heading.len() + 2..];
    let level = heading.split(' ').next().unwrap_or("#");
    // The section ends at the next heading of the same or a higher level.
    let end = body
        .match_indices("\n#")
        .find(|(i, _)| {
            let line = body[i + 1..].split('\n').next().unwrap_or_default();
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes <= level.len()
        })
        .map_or(body.len(), |(i, _)| i);
    &body[..end]
}

/// The lines of every ```json block in `text`.
fn json_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("```") {
            inside = !inside && line.trim() == "```json";
            continue;
        }
        if inside && !line.trim().is_empty() {
            lines.push(line.trim());
        }
    }
    lines
}

/// The first-column names (in backquotes) of the table rows in `text`.
fn table_names(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect()
}

/// Decodes `json` as `T` and checks that encoding gives the same JSON.
fn round_trip<T: DeserializeOwned + Serialize + std::fmt::Debug>(json: &str) -> T {
    let value: T = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("PROTOCOL.md example does not decode: {e}\n{json}"));
    let written = serde_json::to_value(&value).unwrap();
    let original: Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        written, original,
        "the example does not encode back to itself: {json}"
    );
    value
}

fn message_type(json: &str) -> String {
    let value: Value = serde_json::from_str(json).unwrap();
    value["type"].as_str().unwrap_or_default().to_owned()
}

/// Every example in a message section decodes; every type in its table has
/// an example.
fn check_messages<T: DeserializeOwned + Serialize + std::fmt::Debug>(heading: &str) {
    let text = section(heading);
    let examples = json_lines(text);
    assert!(!examples.is_empty(), "{heading} has examples");
    for json in &examples {
        round_trip::<T>(json);
    }
    let shown: Vec<String> = examples.iter().map(|j| message_type(j)).collect();
    let named = table_names(text);
    assert!(!named.is_empty(), "{heading} has a table of types");
    for name in named {
        assert!(
            shown.iter().any(|s| s == name),
            "{heading}: `{name}` is in the table but has no JSON example"
        );
    }
}

#[test]
fn client_messages_in_the_document_are_what_the_types_read_and_write() {
    check_messages::<ClientMessage>("### Client to server");
}

#[test]
fn server_messages_in_the_document_are_what_the_types_read_and_write() {
    check_messages::<ServerMessage>("### Server to client");
}

#[test]
fn http_examples_are_what_the_types_read_and_write() {
    let lines = json_lines(section("## HTTP"));
    let mut request = "";
    let mut checked = 0;
    for line in lines {
        let Some((status, body)) = line.split_once(' ') else {
            continue;
        };
        if status.parse::<u16>().is_err() {
            request = line;
            continue;
        }
        if request.starts_with("POST /api/rooms") {
            let created: CreatedRoom = round_trip(body);
            assert!(created.url.ends_with(&format!("/r/{}", created.token)));
        } else if request.starts_with("GET /api/rooms/") {
            let info: RoomInfo = round_trip(body);
            let url = info.url.expect("the room answer carries the link");
            assert!(url.ends_with(&format!("/r/{}", info.token)));
        } else {
            panic!("an HTTP example after an unknown request {request:?}");
        }
        checked += 1;
    }
    assert!(checked >= 2, "both room answers are shown");
}

#[test]
fn the_error_table_agrees_with_the_codes() {
    let text = section("### Error codes");
    let mut rows = 0;
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = cells[1].trim_matches('`');
        let parsed: ErrorCode = serde_json::from_value(Value::from(code))
            .unwrap_or_else(|e| panic!("`{code}` in PROTOCOL.md is not an error code: {e}"));
        let fatal = match cells[2] {
            "yes" => true,
            "no" => false,
            other => panic!("`{code}`: fatal column says {other:?}"),
        };
        assert_eq!(parsed.is_fatal(), fatal, "`{code}` fatal");
        assert_eq!(parsed.as_str(), code);
        rows += 1;
    }
    assert!(rows >= 10, "the table lists the codes ({rows} rows)");
}

#[test]
fn the_document_names_the_version_the_code_speaks() {
    let title = PROTOCOL.lines().next().unwrap_or_default();
    assert!(
        title.ends_with(&format!(
            "version {}",
            webcall_core::protocol::PROTOCOL_VERSION
        )),
        "{title}"
    );
}
