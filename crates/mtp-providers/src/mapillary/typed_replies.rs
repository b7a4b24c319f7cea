//! Every Mapillary reply decoded into its typed shape, from the samples quoted in
//! PROTOCOLS.md §2; a reply that does not fit names the service, the call and the field.
#![allow(clippy::unwrap_used)]

use super::activity::{ActivityNode, StageState};
use super::*;

fn fits<T: serde::de::DeserializeOwned>(call: &str, body: &str) -> T {
    decode(call, 200, body.as_bytes()).unwrap()
}

fn refused<T: serde::de::DeserializeOwned + std::fmt::Debug>(call: &str, body: &str) -> String {
    decode::<T>(call, 200, body.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn the_observed_activity_node_of_protocols_2_6() {
    // Verbatim from PROTOCOLS §2.6.
    let node: ActivityNode = fits(
        "getLatestActivity",
        r#"{"cluster_id":"151552211058876","type":"UPLOAD","created_at_seconds":1683759912,"captured_at_seconds":1683629036,"item_count":43,"image_id":"202467835974822","status":"FINISHED","initial_processing_status":"FINISHED","anonymization_status":"FINISHED","tiler_status":"FINISHED","error_code":"UNSET","timezone":"EUROPE_MADRID"}"#,
    );
    assert_eq!(node.cluster_id, "151552211058876");
    assert_eq!(node.item_count, Some(43));
    assert_eq!(node.image_id.as_deref(), Some("202467835974822"));
    assert_eq!(node.stages(), [StageState::Done; 4]);
    assert!(node.published());
    assert_eq!(node.error(), None);
    assert_eq!(node.failed_stage(), None);
    // Ids that arrive as numbers are the same ids.
    let numeric: ActivityNode = fits(
        "getLatestActivity",
        r#"{"cluster_id":151552211058876,"created_at_seconds":1,"image_id":202467835974822}"#,
    );
    assert_eq!(numeric.cluster_id, "151552211058876");
    assert_eq!(numeric.image_id.as_deref(), Some("202467835974822"));
}

#[test]
fn stage_statuses_read_as_the_web_page_shows_them() {
    assert_eq!(StageState::from_raw(Some("FINISHED")), StageState::Done);
    assert_eq!(StageState::from_raw(Some("UNSET")), StageState::Waiting);
    assert_eq!(StageState::from_raw(None), StageState::Waiting);
    assert_eq!(
        StageState::from_raw(Some("IN_PROGRESS")),
        StageState::Running
    );
    assert_eq!(
        StageState::from_raw(Some("PROCESSING")),
        StageState::Running
    );
    assert_eq!(StageState::from_raw(Some("FAILED")), StageState::Failed);
    assert_eq!(
        StageState::from_raw(Some("ERROR_TIMEOUT")),
        StageState::Failed
    );
    // An error code on a stage that is not done fails that stage.
    let node: ActivityNode = fits(
        "getLatestActivity",
        r#"{"cluster_id":"1","created_at_seconds":1,"status":"FINISHED","initial_processing_status":"IN_PROGRESS","error_code":"CORRUPT_IMAGES"}"#,
    );
    assert_eq!(node.failed_stage(), Some(1));
    assert_eq!(node.error(), Some("CORRUPT_IMAGES"));
}

#[test]
fn a_node_that_does_not_fit_names_the_call_and_the_field() {
    let e = refused::<ActivityNode>(
        "getLatestActivity",
        r#"{"type":"UPLOAD","created_at_seconds":1}"#,
    );
    assert!(e.starts_with("Mapillary: getLatestActivity"), "{e}");
    assert!(e.contains("cluster_id"), "{e}");
    let e = refused::<ActivityNode>(
        "getLatestActivity",
        r#"{"cluster_id":"1","created_at_seconds":"yesterday"}"#,
    );
    assert!(e.contains("field created_at_seconds"), "{e}");
}

#[test]
fn upload_host_and_finish_replies() {
    let o: OffsetReply = fits("offset", r#"{"offset":5000}"#);
    assert_eq!(o.offset, 5000);
    let e = refused::<OffsetReply>("offset", "{}");
    assert!(e.contains("offset") && e.contains("missing field"), "{e}");
    let h: HandleReply = fits("upload", r#"{"h":"Zm9vYmFy"}"#);
    assert_eq!(h.h, "Zm9vYmFy");
    let e = refused::<HandleReply>("upload", r#"{"debug_info":{}}"#);
    assert!(e.contains("Mapillary: upload") && e.contains("`h`"), "{e}");
    let f: FinishReply = fits("finish_upload", r#"{"cluster_id":"151552211058876"}"#);
    assert_eq!(f.cluster_id, "151552211058876");
    let f: FinishReply = fits("finish_upload", r#"{"cluster_id":151552211058876}"#);
    assert_eq!(f.cluster_id, "151552211058876");
    let e = refused::<FinishReply>("finish_upload", r#"{"cluster_id":""}"#);
    assert!(e.contains("field cluster_id"), "{e}");
    let e = refused::<FinishReply>("finish_upload", "<html>oops</html>");
    assert!(e.contains("finish_upload: the reply is not JSON"), "{e}");
}

#[test]
fn graph_reads() {
    let me: UserReply = fits(
        "me",
        r#"{"id":"104729000000001","username":"sandbox-user"}"#,
    );
    assert_eq!(
        MapillaryUser::from(me).username.as_deref(),
        Some("sandbox-user")
    );
    let list: DataList<ImageReply> = fits(
        "images",
        r#"{"data":[{"id":"1","captured_at":1714550400123,"geometry":{"type":"Point","coordinates":[6.6,46.5]},"sequence":"abc","creator":{"id":"7","username":"u"},"is_pano":false,"compass_angle":12.5,"altitude":410.2},{"id":2,"sequence":{"id":"def"}}]}"#,
    );
    let images: Vec<MapillaryImage> = list.data.into_iter().map(MapillaryImage::from).collect();
    assert_eq!(
        images[0].geometry,
        Some(LonLat {
            lon: 6.6,
            lat: 46.5
        })
    );
    assert_eq!(images[0].sequence_id.as_deref(), Some("abc"));
    assert_eq!(images[0].captured_at_ms, Some(1_714_550_400_123));
    assert_eq!(images[1].id, "2");
    assert_eq!(images[1].sequence_id.as_deref(), Some("def"));
    let ids: DataList<IdReply> = fits("image_ids", r#"{"data":[{"id":"1"},{"id":"2"}]}"#);
    assert_eq!(ids.data.len(), 2);
    let e = refused::<DataList<ImageReply>>(
        "images",
        r#"{"data":[{"id":"1"},{"id":"2","geometry":{"type":"Point","coordinates":"x"}}]}"#,
    );
    assert!(e.contains("Mapillary: images"), "{e}");
    assert!(e.contains("data[1].geometry.coordinates"), "{e}");
    let e = refused::<DataList<IdReply>>("image_ids", r#"{"error":{"message":"x"}}"#);
    assert!(e.contains("image_ids") && e.contains("data"), "{e}");
}
