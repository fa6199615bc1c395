//! The screen's words in English and Russian, chosen from the locale.

use super::state::Connection;

/// The language of the screen's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// Russian when `LC_ALL`, else `LC_MESSAGES`, else `LANG` starts with `ru`;
    /// English otherwise.
    pub fn from_env() -> Self {
        let pick = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|v| !v.is_empty());
        Self::from_locale(pick.as_deref())
    }

    /// The language a locale string such as `ru_RU.UTF-8` asks for.
    pub fn from_locale(locale: Option<&str>) -> Self {
        match locale {
            Some(l) if l.to_ascii_lowercase().starts_with("ru") => Self::Ru,
            _ => Self::En,
        }
    }

    /// The name of a connection state.
    pub fn connection(self, c: Connection) -> &'static str {
        use Connection::*;
        match (self, c) {
            (Self::En, Joining) => "joining",
            (Self::En, Waiting) => "waiting for the other side",
            (Self::En, Connecting) => "connecting",
            (Self::En, Connected) => "connected",
            (Self::En, Reconnecting) => "reconnecting",
            (Self::En, PeerLeft) => "the other side left",
            (Self::En, Ended) => "call ended",
            (Self::En, Failed) => "connection failed",
            (Self::Ru, Joining) => "подключение к комнате",
            (Self::Ru, Waiting) => "ждём собеседника",
            (Self::Ru, Connecting) => "соединение",
            (Self::Ru, Connected) => "соединено",
            (Self::Ru, Reconnecting) => "восстановление связи",
            (Self::Ru, PeerLeft) => "собеседник вышел",
            (Self::Ru, Ended) => "звонок завершён",
            (Self::Ru, Failed) => "соединение не удалось",
        }
    }

    /// Words used on the status line and key help.
    pub fn text(self) -> &'static Texts {
        match self {
            Self::En => &EN,
            Self::Ru => &RU,
        }
    }
}

/// Fixed phrases of one language.
#[derive(Debug)]
pub struct Texts {
    /// Key help: mute.
    pub key_mute: &'static str,
    /// Key help: camera.
    pub key_camera: &'static str,
    /// Key help: hang up.
    pub key_hangup: &'static str,
    /// Microphone muted.
    pub mic_off: &'static str,
    /// Camera off.
    pub camera_off: &'static str,
    /// Shown where the remote picture goes before it arrives.
    pub no_video: &'static str,
    /// Label of the self-view.
    pub you: &'static str,
    /// Packet loss label.
    pub loss: &'static str,
    /// Key help: chat.
    pub key_chat: &'static str,
    /// Key help on the chat line: send, cancel.
    pub key_send: &'static str,
    /// Key help on the chat line: cancel.
    pub key_cancel: &'static str,
    /// The verification code's label on the status line.
    pub code: &'static str,
    /// Who wrote a chat message: the other side.
    pub them: &'static str,
    /// The status while the other side shares its screen.
    pub sharing_screen: &'static str,
}

const EN: Texts = Texts {
    key_mute: "mute",
    key_camera: "camera",
    key_hangup: "hang up",
    mic_off: "mic off",
    camera_off: "camera off",
    no_video: "no video from the other side yet",
    you: "you",
    loss: "loss",
    key_chat: "chat",
    key_send: "send",
    key_cancel: "cancel",
    code: "code",
    them: "them",
    sharing_screen: "sharing screen",
};

const RU: Texts = Texts {
    key_mute: "микрофон",
    key_camera: "камера",
    key_hangup: "завершить",
    mic_off: "микрофон выкл.",
    camera_off: "камера выкл.",
    no_video: "видео собеседника пока нет",
    you: "вы",
    loss: "потери",
    key_chat: "чат",
    key_send: "отправить",
    key_cancel: "отмена",
    code: "код",
    them: "собеседник",
    sharing_screen: "показывает экран",
};
