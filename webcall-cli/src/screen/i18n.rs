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
    /// Notice: kitty pictures inside tmux need the passthrough.
    pub tmux_passthrough_off: &'static str,
    /// Notice: iTerm2 pictures cannot pass through tmux.
    pub tmux_no_iterm2: &'static str,
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
    tmux_passthrough_off: "kitty images in tmux need `set -g allow-passthrough on`: drawing half blocks",
    tmux_no_iterm2: "iTerm2 images do not pass through tmux: drawing half blocks",
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
    tmux_passthrough_off: "для картинок kitty в tmux нужно `set -g allow-passthrough on`: рисуем полублоками",
    tmux_no_iterm2: "картинки iTerm2 не проходят через tmux: рисуем полублоками",
};

impl Lang {
    /// Words of the screen's layout: the help overlay, the end screen, a
    /// terminal too small.
    pub fn layout(self) -> &'static LayoutTexts {
        match self {
            Self::En => &LAYOUT_EN,
            Self::Ru => &LAYOUT_RU,
        }
    }
}

/// Words of the help overlay, the end screen and the too-small notice.
#[derive(Debug)]
pub struct LayoutTexts {
    /// Key help: the help overlay.
    pub key_help: &'static str,
    /// Key help: the self-view.
    pub key_self_view: &'static str,
    /// The help overlay's title.
    pub help_title: &'static str,
    /// The help overlay's last line.
    pub help_close: &'static str,
    /// The help overlay: every key (as shown) and what it does.
    pub help_keys: [(&'static str, &'static str); 9],
    /// Said when the terminal is too small to draw the call.
    pub too_small: &'static str,
    /// Followed by the smallest size, `40x12`.
    pub at_least: &'static str,
    /// The end screen: the call's length.
    pub duration: &'static str,
    /// The end screen: the call never connected.
    pub never_connected: &'static str,
    /// The end screen: how to close it.
    pub end_close: &'static str,
    /// The end screen: quality label.
    pub quality: &'static str,
    /// The end screen: path label.
    pub path: &'static str,
    /// Why the call ended: this side hung up.
    pub why_you_hung_up: &'static str,
    /// Why the call ended: the time given ran out.
    pub why_time_up: &'static str,
    /// Why the call ended: the other side hung up.
    pub why_peer_hung_up: &'static str,
    /// Why the call ended: the server went away.
    pub why_server_lost: &'static str,
    /// Why the call ended: the room's link expired.
    pub why_room_expired: &'static str,
    /// Why the call ended: this seat was taken by another connection.
    pub why_replaced: &'static str,
    /// Why the call ended: the connection failed.
    pub why_connection_lost: &'static str,
    /// Why the call ended: the server closed the call.
    pub why_closed: &'static str,
}

const LAYOUT_EN: LayoutTexts = LayoutTexts {
    key_help: "help",
    key_self_view: "self-view",
    help_title: "keys",
    help_close: "any key closes this help",
    help_keys: [
        ("m", "mute or unmute the microphone"),
        ("v", "turn the camera off or on"),
        ("d", "switch to the next camera"),
        ("a", "switch to the next microphone"),
        ("s", "show or hide your own picture"),
        ("c, Enter", "type a chat message"),
        ("i", "show or hide the quality details"),
        ("?", "this help"),
        ("q, Esc, Ctrl-C", "hang up"),
    ],
    too_small: "terminal too small",
    at_least: "at least",
    duration: "duration",
    never_connected: "never connected",
    end_close: "any key closes",
    quality: "quality",
    path: "path",
    why_you_hung_up: "you hung up",
    why_time_up: "the time given for the call ran out",
    why_peer_hung_up: "the other side hung up",
    why_server_lost: "lost the webcall server",
    why_room_expired: "the link expired",
    why_replaced: "you joined this call from another place",
    why_connection_lost: "the connection was lost",
    why_closed: "the server closed the call",
};

const LAYOUT_RU: LayoutTexts = LayoutTexts {
    key_help: "справка",
    key_self_view: "своё видео",
    help_title: "клавиши",
    help_close: "любая клавиша закрывает справку",
    help_keys: [
        ("m (ь)", "выключить или включить микрофон"),
        ("v (м)", "выключить или включить камеру"),
        ("d (в)", "следующая камера"),
        ("a (ф)", "следующий микрофон"),
        ("s (ы)", "показать или скрыть своё видео"),
        ("c (с), Enter", "написать в чат"),
        ("i (ш)", "подробности о качестве"),
        ("? (,)", "эта справка"),
        ("q (й), Esc, Ctrl-C", "завершить звонок"),
    ],
    too_small: "окно терминала слишком маленькое",
    at_least: "нужно не меньше",
    duration: "длительность",
    never_connected: "соединения не было",
    end_close: "любая клавиша закрывает",
    quality: "качество",
    path: "путь",
    why_you_hung_up: "вы завершили звонок",
    why_time_up: "время звонка истекло",
    why_peer_hung_up: "собеседник завершил звонок",
    why_server_lost: "связь с сервером webcall потеряна",
    why_room_expired: "срок действия ссылки истёк",
    why_replaced: "вы подключились к звонку в другом месте",
    why_connection_lost: "соединение потеряно",
    why_closed: "сервер закрыл звонок",
};
