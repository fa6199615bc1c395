//! [`UdpLoss`]: a lossy network for one test, made with an nftables rule
//! that drops a share of the UDP packets the network namespace sends
//! (media and ICE; TCP, so the signaling and the browser driver, is left
//! alone). Only in a namespace whose sole interface is `lo` (the
//! loopback-only namespace the end-to-end tests run in), so the machine's
//! own traffic is never touched. Needs root and `nft`.

use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// The nftables table the rule lives in.
const TABLE: &str = "webcall_test_loss";

/// True when this process is in a network namespace whose only interface
/// is `lo`.
pub fn loopback_only_namespace() -> bool {
    let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.lines().count() == 1 && text.contains(": lo:")
}

fn nft(args: &[&str]) -> Result<()> {
    let out = Command::new("nft")
        .args(args)
        .output()
        .context("cannot run nft (Debian: apt-get install nftables)")?;
    ensure!(
        out.status.success(),
        "nft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Drops a share of outgoing UDP while it lives; the rule goes on drop.
/// One at a time per namespace.
#[derive(Debug)]
pub struct UdpLoss(());

impl UdpLoss {
    /// Starts dropping `percent` (1 to 100) of the UDP packets sent, at
    /// random. Refuses outside a loopback-only namespace.
    pub fn start(percent: u32) -> Result<Self> {
        ensure!(
            (1..=100).contains(&percent),
            "a loss of {percent} %: give 1 to 100"
        );
        if !loopback_only_namespace() {
            bail!(
                "refusing to drop packets outside a loopback-only network namespace: \
                 run the test under `unshare -n -- sh -c 'ip link set lo up && cargo test ...'`"
            );
        }
        nft(&["add", "table", "inet", TABLE])?;
        let guard = Self(());
        nft(&[
            "add",
            "chain",
            "inet",
            TABLE,
            "out",
            "{ type filter hook output priority 0; }",
        ])?;
        let percent = percent.to_string();
        nft(&[
            "add", "rule", "inet", TABLE, "out", "meta", "l4proto", "udp", "numgen", "random",
            "mod", "100", "<", &percent, "drop",
        ])?;
        Ok(guard)
    }
}

impl Drop for UdpLoss {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "inet", TABLE]);
    }
}
