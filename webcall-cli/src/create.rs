//! `webcall create`: ask the server for a room and print its link, with a
//! QR code for a phone. Plain text (no escape codes) when piped.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

use crate::cli::CreateArgs;

/// Runs `webcall create`.
pub async fn run(args: &CreateArgs) -> Result<()> {
    let room = webcall_core::client::create_room(&args.server).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "url": room.url,
            "token": room.token.as_str(),
            "expires_at": room.expires_at.to_string(),
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(out, "{}", room.url)?;
    if !args.no_qr {
        if out.is_terminal() {
            drop(out);
            if qr2term::print_qr(&room.url).is_err() {
                tracing::debug!("the link does not fit a QR code");
            }
            out = std::io::stdout().lock();
        } else if let Ok(code) = QrCode::new(room.url.as_bytes()) {
            let text = code
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            writeln!(out, "{text}")?;
        }
    }
    writeln!(out, "expires at {}", room.expires_at)?;
    writeln!(out, "join from a terminal with: webcall join {}", room.url)?;
    Ok(())
}
