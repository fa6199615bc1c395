//! The browser client, embedded in the binary: the files of
//! `webcall-server/assets/` with their content types and validators.
//!
//! The page (`index.html`) is always revalidated (`Cache-Control:
//! no-cache`, a strong `ETag` from its content, `304 Not Modified` on a
//! match). It names the other files under `/assets/{VERSION}/`, where
//! [`VERSION`] is a hash of every file: those answers may be kept for good
//! (`immutable`), so a reload or a second visit loads no script twice, and a
//! new build changes every URL at once. The same files under plain
//! `/assets/{name}` are revalidated like the page.
//!
//! The page loads two modules, `early.js` (a reloaded page's join, which
//! does not wait for the rest) and `app.js`, and names every module they
//! import with `<link rel="modulepreload">`, so the browser fetches them
//! all at once instead of one import level after another (a test here
//! checks).

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The file name, as in `/assets/{name}`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// Every file the browser client is made of.
pub static ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/style.css"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/i18n.js"),
    },
    Asset {
        name: "protocol.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/protocol.js"),
    },
    Asset {
        name: "call.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/call.js"),
    },
    Asset {
        name: "channel.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/channel.js"),
    },
    Asset {
        name: "chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/chat.js"),
    },
    Asset {
        name: "screen.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/screen.js"),
    },
    Asset {
        name: "status.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/status.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/dom.js"),
    },
    Asset {
        name: "home.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/home.js"),
    },
    Asset {
        name: "devices.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/devices.js"),
    },
    Asset {
        name: "prejoin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/prejoin.js"),
    },
    Asset {
        name: "room.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/room.js"),
    },
    Asset {
        name: "quality.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/quality.js"),
    },
    Asset {
        name: "quality-view.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/quality-view.js"),
    },
    Asset {
        name: "debug.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/debug.js"),
    },
    Asset {
        name: "early.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/early.js"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
];

/// The version of this build's client: a hash of all its files.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let all: Vec<u8> = ASSETS.iter().flat_map(|a| a.body.iter().copied()).collect();
    format!("{:016x}", fnv1a(&all))
});

/// Each file's bytes as served: the page with its file URLs versioned.
static BODIES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            if a.name == "index.html" {
                String::from_utf8_lossy(a.body)
                    .replace("\"/assets/", &format!("\"/assets/{}/", *VERSION))
                    .into_bytes()
            } else {
                a.body.to_vec()
            }
        })
        .collect()
});

static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    BODIES
        .iter()
        .map(|body| {
            HeaderValue::try_from(format!("\"{:016x}\"", fnv1a(body)))
                .expect("hex is a valid header")
        })
        .collect()
});

/// 64-bit FNV-1a: enough to tell two versions of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The file named `name` under `/assets/{version}/`: kept for good when
/// `version` is this build's, revalidated otherwise (a page from another
/// build gets today's files).
pub fn versioned_response(
    version: &str,
    name: &str,
    request_headers: &HeaderMap,
) -> Option<Response> {
    let mut response = response(name, request_headers)?;
    if version == VERSION.as_str() && name != "index.html" {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    Some(response)
}

/// The file named `name` as a response, `None` when there is none.
pub fn response(name: &str, request_headers: &HeaderMap) -> Option<Response> {
    let index = ASSETS.iter().position(|a| a.name == name)?;
    let asset = &ASSETS[index];
    let body = BODIES[index].as_slice();
    let etag = ETAGS[index].clone();
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag.to_str().unwrap_or_default() || t.trim() == "*")
        });
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag),
    ];
    Some(if fresh {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (
            headers,
            [(header::CONTENT_TYPE, asset.content_type)],
            body.to_vec(),
        )
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_there_once() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
    }

    /// The modules one `import ... from './name.js'` line of `source` names.
    fn imports(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter(|line| line.starts_with("import "))
            .filter_map(|line| line.split("from './").nth(1))
            .filter_map(|rest| rest.split('\'').next())
            .collect()
    }

    #[test]
    fn the_page_preloads_every_module_it_imports() {
        let page = ASSETS.iter().find(|a| a.name == "index.html").unwrap();
        let page = std::str::from_utf8(page.body).unwrap();
        assert!(page.contains("<script type=\"module\" src=\"/assets/app.js\">"));
        assert!(page.contains("<script type=\"module\" async src=\"/assets/early.js\">"));
        let mut imported = vec!["app.js", "early.js"];
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let source = std::str::from_utf8(asset.body).unwrap();
            for name in imports(source) {
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {name}, which is not embedded: add it to ASSETS",
                    asset.name
                );
                assert!(
                    page.contains(&format!(
                        "<link rel=\"modulepreload\" href=\"/assets/{name}\">"
                    )),
                    "{} imports {name}: add a modulepreload link for it to index.html",
                    asset.name
                );
                imported.push(name);
            }
        }
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            assert!(
                imported.contains(&asset.name),
                "{} is embedded but nothing loads it",
                asset.name
            );
        }
    }

    #[test]
    fn unchanged_files_answer_not_modified() {
        let first = response("app.js", &HeaderMap::new()).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            response("app.js", &headers).unwrap().status(),
            StatusCode::NOT_MODIFIED
        );
        assert!(response("../Cargo.toml", &HeaderMap::new()).is_none());
    }
}
