//! The camera through the real nokhwa calls: on a machine without one, the
//! error says what to join with instead; with one, frames are I420.

use webcall_cli::devices::camera::list_cameras;
use webcall_cli::devices::{CameraChoice, CameraSource, NO_CAMERA};
use webcall_core::media::VideoSource;

#[test]
fn opening_the_camera_gives_a_picture_or_says_what_to_use_instead() {
    let cameras = list_cameras().expect("listing cameras must not fail");
    match CameraSource::open(&CameraChoice::Default) {
        Err(e) => {
            assert!(
                cameras.is_empty(),
                "cameras {cameras:?} present but open failed: {e}"
            );
            assert_eq!(e.to_string(), NO_CAMERA);
        }
        Ok(mut cam) => {
            let frame = cam.next_frame().unwrap().expect("a frame");
            assert_eq!(frame.width() % 2, 0);
            assert_eq!(frame.height() % 2, 0);
            assert!(cam.describe().starts_with("camera"));
        }
    }
}

#[test]
fn asking_for_a_camera_that_is_not_there_names_the_way_out() {
    let err = CameraSource::open(&CameraChoice::Index(97))
        .unwrap_err()
        .to_string();
    assert!(
        err == NO_CAMERA || err.contains("no camera number 97"),
        "unexpected message: {err}"
    );
    let err = CameraSource::open(&CameraChoice::Name("no such camera xyz".into()))
        .unwrap_err()
        .to_string();
    assert!(err == NO_CAMERA || err.contains("no camera named"), "{err}");
}

#[test]
fn camera_choice_reads_numbers_as_indices_and_text_as_names() {
    assert_eq!(CameraChoice::parse("2"), CameraChoice::Index(2));
    assert_eq!(
        CameraChoice::parse("HD Webcam"),
        CameraChoice::Name("HD Webcam".into())
    );
}
