//! Building one WebRTC peer connection the way webcall needs it: H.264
//! (constrained baseline, packetization-mode 1) and Opus, the settings that
//! make it interoperate with Chromium, local ICE addresses, an
//! interceptor that hands key frame requests to the sender, and the
//! negotiated `webcall` data channel.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::data_channel::RTCDataChannelInit;
use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, Registry, SettingEngineBuilder, register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use super::{channel, chat};
use crate::error::{Error, Result};
use crate::protocol::{IceCandidate, IceServer, IceTransportPolicy};

/// The H.264 payload type webcall offers.
pub const H264_PAYLOAD_TYPE: u8 = 102;
/// The Opus payload type webcall offers.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;

pub(crate) fn rtc_err(context: &str) -> impl FnOnce(webrtc::error::Error) -> Error + '_ {
    move |e| Error::WebRtc(format!("{context}: {e}"))
}

/// What a new peer connection needs to know.
#[derive(Debug, Clone)]
pub(crate) struct PeerSettings {
    pub ice_servers: Vec<IceServer>,
    pub policy: IceTransportPolicy,
    pub ice_addrs: Vec<IpAddr>,
    pub send_video: bool,
    pub send_audio: bool,
}

/// Something the peer connection reported, tagged with its generation.
pub(crate) enum PeerEvent {
    Candidate(IceCandidate),
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

/// A local track and how to write to it.
pub(crate) struct LocalTrack {
    pub track: Arc<TrackLocalStaticSample>,
    pub sender: Arc<dyn RtpSender>,
    pub ssrc: u32,
}

/// One peer connection, its local tracks and its data channel.
pub(crate) struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    pub video: Option<LocalTrack>,
    pub audio: Option<LocalTrack>,
    /// The `webcall` data channel (negotiated, id 0, ordered, reliable).
    pub chat: Arc<dyn DataChannel>,
    /// True once we added the screen's video section for our first offer.
    pub screen_section: bool,
}

struct Handler {
    generation: u64,
    tx: mpsc::UnboundedSender<(u64, PeerEvent)>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let c = IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_m_line_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                };
                let _ = self.tx.send((self.generation, PeerEvent::Candidate(c)));
            }
            Err(e) => tracing::debug!("cannot serialise a local candidate: {e}"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send((self.generation, PeerEvent::State(state)));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send((self.generation, PeerEvent::Track(track)));
    }
}

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

/// The H.264 codec as webcall negotiates it.
pub(crate) fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            .to_owned(),
        rtcp_feedback: vec![
            feedback("goog-remb", ""),
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
        ],
    }
}

/// The Opus codec as webcall negotiates it.
pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn random_ssrc() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b) | 1
}

fn local_track(
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
) -> Result<(Arc<TrackLocalStaticSample>, u32)> {
    let ssrc = random_ssrc();
    let name = if kind == RtpCodecKind::Video {
        "video"
    } else {
        "audio"
    };
    let track = MediaStreamTrack::new(
        "webcall".to_owned(),
        format!("webcall-{name}"),
        format!("webcall {name}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    );
    let t = TrackLocalStaticSample::new(Instant::now(), track)
        .map_err(rtc_err("creating a local track"))?;
    Ok((Arc::new(t), ssrc))
}

/// Builds a peer connection of generation `generation`; its events go to `tx`.
pub(crate) async fn build(
    settings: &PeerSettings,
    generation: u64,
    tx: mpsc::UnboundedSender<(u64, PeerEvent)>,
) -> Result<Peer> {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: h264_codec(),
                payload_type: H264_PAYLOAD_TYPE,
            },
            RtpCodecKind::Video,
        )
        .map_err(rtc_err("registering H.264"))?;
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: OPUS_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )
        .map_err(rtc_err("registering Opus"))?;
    let registry = register_default_interceptors(Registry::new(), &mut media)
        .map_err(rtc_err("interceptors"))?;
    // Last in the chain, so the stock interceptors have seen everything first.
    let registry = registry.with(Slot::from(14_000), KeyFrameRequests::default());

    let loopback = settings.ice_addrs.iter().any(IpAddr::is_loopback);
    let mut se = SettingEngineBuilder::new()
        // Chromium's checks often arrive before its candidate: accept the
        // peer-reflexive address at once instead of after a second.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        // Answer browser-initiated renegotiation without flipping DTLS roles.
        .with_answering_dtls_role(RTCDtlsRole::Server)
        // An ICE restart starts over with fresh sockets and fresh TURN
        // allocations. Without it a restart keeps the old allocation, and
        // once the TURN server has dropped that (coturn does when a relayed
        // send fails, or when it restarts), every CreatePermission on it is
        // answered "400 Bad Request" and the relay never works again.
        .with_discard_local_candidates_during_ice_restart(true)
        .with_include_loopback_candidate(loopback)
        // The data channel's limit (PROTOCOL.md): larger messages are
        // refused by SCTP before they reach us.
        .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(
            channel::MAX_MESSAGE_BYTES as u32,
        ));
    if !settings.ice_addrs.is_empty() {
        se = se.with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled);
    }

    let ice_servers = usable_ice_servers(&settings.ice_servers, settings.policy);
    let policy = match settings.policy {
        IceTransportPolicy::All => RTCIceTransportPolicy::All,
        IceTransportPolicy::Relay => RTCIceTransportPolicy::Relay,
    };
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .with_ice_transport_policy(policy)
        .build();
    let udp_addrs: Vec<SocketAddr> = if settings.ice_addrs.is_empty() {
        vec![SocketAddr::from(([0, 0, 0, 0], 0))]
    } else {
        settings
            .ice_addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect()
    };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(media)
        .with_setting_engine(se.build())
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler { generation, tx }))
        .with_udp_addrs(udp_addrs)
        // Chat handed to the channel and not yet acknowledged is bounded:
        // past this, sending waits (and the outbox fills).
        .with_data_channel_send_buffer_limit(chat::SEND_BUFFER_BYTES)
        .build()
        .await
        .map_err(rtc_err("creating the peer connection"))?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);

    // Before any offer or answer, on both sides, so the first offer has
    // its application section and nobody waits for an in-band open.
    let chat = pc
        .create_data_channel(
            channel::LABEL,
            Some(RTCDataChannelInit {
                ordered: true,
                max_packet_life_time: None,
                max_retransmits: None,
                protocol: String::new(),
                negotiated: Some(channel::CHANNEL_ID),
            }),
        )
        .await
        .map_err(rtc_err("creating the data channel"))?;
    let mut peer = Peer {
        pc: pc.clone(),
        video: None,
        audio: None,
        chat,
        screen_section: false,
    };
    for (kind, send) in [
        (RtpCodecKind::Video, settings.send_video),
        (RtpCodecKind::Audio, settings.send_audio),
    ] {
        if send {
            let codec = if kind == RtpCodecKind::Video {
                h264_codec()
            } else {
                opus_codec()
            };
            let (track, ssrc) = local_track(kind, codec)?;
            let sender = pc
                .add_track(track.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(rtc_err("adding a track"))?;
            let local = LocalTrack {
                track,
                sender,
                ssrc,
            };
            if kind == RtpCodecKind::Video {
                peer.video = Some(local);
            } else {
                peer.audio = Some(local);
            }
        } else {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(rtc_err("adding a receive-only transceiver"))?;
        }
    }
    Ok(peer)
}

/// Adds the second video section, after the camera's: the other side's
/// shared screen (PROTOCOL.md, "Screen sharing"), received only. Only
/// before the first offer of a connection that has seen no offer: when
/// answering, the offer brings the section, and a receive-only transceiver
/// made beforehand would be matched to the offer's camera section (webrtc
/// pairs a remote `sendrecv` section with a local `recvonly` one first).
pub(crate) async fn add_screen_section(peer: &mut Peer) -> Result<()> {
    if peer.screen_section || peer.pc.remote_description().await.is_some() {
        return Ok(());
    }
    peer.pc
        .add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .map_err(rtc_err("adding the screen's receive-only transceiver"))?;
    peer.screen_section = true;
    Ok(())
}

/// True for the URLs the native peer can use: STUN, and TURN over UDP.
///
/// webrtc 0.21 relays over UDP only: it skips `turns:` and
/// `turn:...?transport=tcp` URLs (RFC 7065 TURN over TCP/TLS is not
/// implemented in its relayer), so they are left out here, said once.
pub(crate) fn usable_ice_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("turns:") {
        return false;
    }
    if lower.starts_with("turn:") {
        return match lower.split_once("?transport=") {
            Some((_, transport)) => transport == "udp",
            None => true,
        };
    }
    true
}

/// The ICE servers as webrtc takes them, without the URLs it cannot use
/// (see [`usable_ice_url`]).
fn usable_ice_servers(servers: &[IceServer], policy: IceTransportPolicy) -> Vec<RTCIceServer> {
    let mut skipped = Vec::new();
    let out: Vec<RTCIceServer> = servers
        .iter()
        .filter_map(|s| {
            let (urls, unusable): (Vec<String>, Vec<String>) =
                s.urls.iter().cloned().partition(|u| usable_ice_url(u));
            skipped.extend(unusable);
            (!urls.is_empty()).then(|| RTCIceServer {
                urls,
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
        })
        .collect();
    if !skipped.is_empty() {
        tracing::info!(
            "the native peer relays over UDP only; not using {}",
            skipped.join(", ")
        );
    }
    let has_turn = out
        .iter()
        .flat_map(|s| &s.urls)
        .any(|u| u.trim().to_ascii_lowercase().starts_with("turn:"));
    if policy == IceTransportPolicy::Relay && !has_turn {
        tracing::warn!(
            "the server allows relayed connections only, but hands out no TURN server \
             reachable over UDP: the call cannot connect"
        );
    }
    out
}

/// The payload type negotiated for a sender, once negotiation is done.
pub(crate) async fn negotiated_payload_type(sender: &Arc<dyn RtpSender>) -> Option<u8> {
    sender
        .get_parameters()
        .await
        .ok()?
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
}

/// True when an RTCP packet asks for a key frame.
pub(crate) fn is_key_frame_request(p: &dyn rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Passes inbound key frame requests (PLI, FIR) on to the local tracks and
/// lets the rest of the inbound RTCP end at the interceptors, as usual.
#[derive(Default)]
struct KeyFrameRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyFrameRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> std::result::Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted: Vec<_> = packets
                .iter()
                .filter(|p| is_key_frame_request(p.as_ref()))
                .cloned()
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(wanted);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> std::result::Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyFrameRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stun_and_turn_over_udp_are_used() {
        for url in [
            "stun:stun.example.org:3478",
            "turn:turn.example.org",
            "turn:127.0.0.1:3478?transport=udp",
            "TURN:turn.example.org?transport=udp",
        ] {
            assert!(usable_ice_url(url), "{url}");
        }
        for url in [
            "turn:turn.example.org:3478?transport=tcp",
            "turns:turn.example.org:443?transport=tcp",
            "turns:turn.example.org",
        ] {
            assert!(!usable_ice_url(url), "{url}");
        }
    }

    #[test]
    fn a_server_left_with_no_usable_url_is_dropped() {
        let servers = vec![
            IceServer {
                urls: vec![
                    "turn:t.example.org?transport=udp".to_owned(),
                    "turn:t.example.org?transport=tcp".to_owned(),
                ],
                username: Some("1:a".to_owned()),
                credential: Some("p".to_owned()),
            },
            IceServer {
                urls: vec!["turns:t.example.org:443?transport=tcp".to_owned()],
                username: Some("1:a".to_owned()),
                credential: Some("p".to_owned()),
            },
        ];
        let out = usable_ice_servers(&servers, IceTransportPolicy::Relay);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].urls, vec!["turn:t.example.org?transport=udp"]);
        assert_eq!(out[0].username, "1:a");
    }
}
