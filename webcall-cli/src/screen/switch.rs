//! Switching cameras and microphones during a call (`d` and `a` on the call
//! screen): which device comes next over a list, what came of a switch, and
//! what the status line says about it, in English and Russian. Opening the
//! devices and handing them to the call is the real call's
//! ([`super::engine::LiveCall`]); everything here is plain logic.

use std::time::Duration;

use super::i18n::Lang;

/// How long the status line shows what a switch did.
pub const FLASH_FOR: Duration = Duration::from_secs(3);

/// Which kind of device a key cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Cameras (`d`).
    Camera,
    /// Microphones (`a`).
    Microphone,
}

/// Which device to switch to when "next" is pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The device at this position in the list.
    To(usize),
    /// The one device there is is already in use.
    OnlyOne,
    /// There is no such device at all.
    NoDevice,
}

/// The device after the one in use (`current`, a position in a list of
/// `count` devices), going round; the first when none of them is in use
/// (the call sends a test pattern, or the device in use is gone).
pub fn next_device(count: usize, current: Option<usize>) -> Next {
    match (count, current) {
        (0, _) => Next::NoDevice,
        (1, Some(0)) => Next::OnlyOne,
        (n, Some(i)) if i < n => Next::To((i + 1) % n),
        _ => Next::To(0),
    }
}

/// The position of the device in use among `names`: the first name its
/// description (a source's `describe()`, such as `camera 0 (USB Camera)`)
/// contains.
pub fn position_in_use(names: &[String], in_use: Option<&str>) -> Option<usize> {
    let in_use = in_use?;
    names
        .iter()
        .position(|n| !n.is_empty() && in_use.contains(n.as_str()))
}

/// What came of a key asking for the next device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switched {
    /// The call now sends from this device.
    To(String),
    /// There is only one such device, already in use.
    OnlyOne,
    /// There is no such device.
    NoDevice,
    /// The call was joined without this kind of media (`--video none`):
    /// nothing can be switched in.
    NotSending,
    /// The next device would not open; the call goes on with the old one.
    Failed {
        /// The device's name.
        name: String,
        /// Why, in the device layer's words.
        error: String,
    },
}

impl Switched {
    /// The status line's text for this outcome.
    pub fn describe(&self, kind: DeviceKind, lang: Lang) -> String {
        use DeviceKind::{Camera, Microphone};
        match (self, kind, lang) {
            (Self::To(name), Camera, Lang::En) => format!("camera: {name}"),
            (Self::To(name), Microphone, Lang::En) => format!("microphone: {name}"),
            (Self::To(name), Camera, Lang::Ru) => format!("камера: {name}"),
            (Self::To(name), Microphone, Lang::Ru) => format!("микрофон: {name}"),
            (Self::OnlyOne, Camera, Lang::En) => "only one camera".into(),
            (Self::OnlyOne, Microphone, Lang::En) => "only one microphone".into(),
            (Self::OnlyOne, Camera, Lang::Ru) => "камера только одна".into(),
            (Self::OnlyOne, Microphone, Lang::Ru) => "микрофон только один".into(),
            (Self::NoDevice, Camera, Lang::En) => "no camera found".into(),
            (Self::NoDevice, Microphone, Lang::En) => "no microphone found".into(),
            (Self::NoDevice, Camera, Lang::Ru) => "камера не найдена".into(),
            (Self::NoDevice, Microphone, Lang::Ru) => "микрофон не найден".into(),
            (Self::NotSending, Camera, Lang::En) => {
                "this call sends no video (joined with --video none)".into()
            }
            (Self::NotSending, Microphone, Lang::En) => {
                "this call sends no audio (joined with --audio none)".into()
            }
            (Self::NotSending, Camera, Lang::Ru) => {
                "в этом звонке нет видео (вход с --video none)".into()
            }
            (Self::NotSending, Microphone, Lang::Ru) => {
                "в этом звонке нет звука (вход с --audio none)".into()
            }
            (Self::Failed { name, error }, Camera, Lang::En) => {
                format!("camera {name} did not open ({error}); the old one stays")
            }
            (Self::Failed { name, error }, Microphone, Lang::En) => {
                format!("microphone {name} did not open ({error}); the old one stays")
            }
            (Self::Failed { name, error }, Camera, Lang::Ru) => {
                format!("камера {name} не открылась ({error}); остаётся прежняя")
            }
            (Self::Failed { name, error }, Microphone, Lang::Ru) => {
                format!("микрофон {name} не открылся ({error}); остаётся прежний")
            }
        }
    }
}

/// The key help for switching devices (after ` d/a `), short enough for
/// the whole key line to fit 80 columns.
pub fn key_help(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "next cam/mic",
        Lang::Ru => "сменить",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_device_at_all() {
        assert_eq!(next_device(0, None), Next::NoDevice);
        assert_eq!(next_device(0, Some(0)), Next::NoDevice);
    }

    #[test]
    fn one_device_in_use_is_the_only_one() {
        assert_eq!(next_device(1, Some(0)), Next::OnlyOne);
    }

    #[test]
    fn one_device_not_in_use_is_switched_to() {
        // Joined with a test pattern: the one camera there is comes in.
        assert_eq!(next_device(1, None), Next::To(0));
    }

    #[test]
    fn cycles_round_the_list() {
        assert_eq!(next_device(3, Some(0)), Next::To(1));
        assert_eq!(next_device(3, Some(1)), Next::To(2));
        assert_eq!(next_device(3, Some(2)), Next::To(0));
        let mut at = Some(0);
        let mut seen = Vec::new();
        for _ in 0..6 {
            let Next::To(i) = next_device(3, at) else {
                panic!("three devices always switch")
            };
            seen.push(i);
            at = Some(i);
        }
        assert_eq!(seen, [1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn a_device_that_is_gone_restarts_from_the_first() {
        assert_eq!(next_device(2, Some(5)), Next::To(0));
        assert_eq!(next_device(2, None), Next::To(0));
    }

    #[test]
    fn the_device_in_use_is_found_by_its_description() {
        let names = vec!["USB Camera".to_owned(), "Integrated Webcam".to_owned()];
        assert_eq!(
            position_in_use(&names, Some("camera 2 (Integrated Webcam)")),
            Some(1)
        );
        assert_eq!(position_in_use(&names, Some("test pattern 640x480")), None);
        assert_eq!(position_in_use(&names, None), None);
        assert_eq!(position_in_use(&[String::new()], Some("anything")), None);
    }

    #[test]
    fn the_status_line_says_what_happened_in_both_languages() {
        let to = Switched::To("USB Camera".into());
        assert_eq!(
            to.describe(DeviceKind::Camera, Lang::En),
            "camera: USB Camera"
        );
        assert_eq!(
            to.describe(DeviceKind::Camera, Lang::Ru),
            "камера: USB Camera"
        );
        assert_eq!(
            Switched::OnlyOne.describe(DeviceKind::Camera, Lang::En),
            "only one camera"
        );
        assert_eq!(
            Switched::OnlyOne.describe(DeviceKind::Microphone, Lang::Ru),
            "микрофон только один"
        );
        assert_eq!(
            Switched::NoDevice.describe(DeviceKind::Microphone, Lang::En),
            "no microphone found"
        );
        let failed = Switched::Failed {
            name: "Webcam".into(),
            error: "busy".into(),
        };
        assert!(
            failed
                .describe(DeviceKind::Camera, Lang::En)
                .contains("the old one stays")
        );
        assert!(
            Switched::NotSending
                .describe(DeviceKind::Camera, Lang::Ru)
                .contains("--video none")
        );
    }
}
