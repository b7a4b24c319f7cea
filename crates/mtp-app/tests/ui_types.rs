//! The UI's TypeScript types for the job table and the status list are generated from the
//! Rust types (ts-rs), so the two cannot drift apart. This test writes
//! `ui/src/gen/types.ts` and fails when what was committed was out of date: run it again
//! (or `make ui-types`) and commit the file.

use mtp_app::Overview;
use mtp_app::account_stats::{KartaViewStats, PanoramaxStats};
use mtp_app::config::{Mode, ModeReason};
use mtp_app::dry_run::{
    AccountCheck, ChunkPlan, DestinationDryRun, DryRun, Refusal, SequenceDryRun,
};
use mtp_app::explore::{
    ExploreProgress, ExploreQuery, ExploreResult, Near, ServiceOutcome, ServiceState, UserFilter,
};
use mtp_app::manage::{
    ChangeOutcome, DeletePlan, HistoryLine, PagePhoto, RemoteActionView, RemoteHow, RemotePlan,
    SequencePage,
};
use mtp_app::mapillary_status::{
    ChunkStatus, MapillaryStatus, StageDetail, StageFailure, StageRecord,
};
use mtp_app::sequences::{JobView, SequenceSummary};
use mtp_core::Destination;
use mtp_core::engine::{ErrorKind, ItemState, JobStatus, Stage};
use mtp_providers::search::{Bbox, FoundImage};
use ts_rs::{Config, TS};

fn generated() -> String {
    // serde_json writes i64 as a plain number.
    let cfg = Config::new().with_large_int("number");
    let decls = [
        Destination::decl(&cfg),
        Mode::decl(&cfg),
        ModeReason::decl(&cfg),
        Overview::decl(&cfg),
        Stage::decl(&cfg),
        JobStatus::decl(&cfg),
        ItemState::decl(&cfg),
        ErrorKind::decl(&cfg),
        StageRecord::decl(&cfg),
        ChunkStatus::decl(&cfg),
        StageDetail::decl(&cfg),
        StageFailure::decl(&cfg),
        MapillaryStatus::decl(&cfg),
        JobView::decl(&cfg),
        SequenceSummary::decl(&cfg),
        RemoteHow::decl(&cfg),
        RemotePlan::decl(&cfg),
        DeletePlan::decl(&cfg),
        ChangeOutcome::decl(&cfg),
        RemoteActionView::decl(&cfg),
        PagePhoto::decl(&cfg),
        HistoryLine::decl(&cfg),
        SequencePage::decl(&cfg),
        AccountCheck::decl(&cfg),
        ChunkPlan::decl(&cfg),
        Refusal::decl(&cfg),
        DestinationDryRun::decl(&cfg),
        SequenceDryRun::decl(&cfg),
        DryRun::decl(&cfg),
        Bbox::decl(&cfg),
        FoundImage::decl(&cfg),
        Near::decl(&cfg),
        UserFilter::decl(&cfg),
        ExploreQuery::decl(&cfg),
        ServiceState::decl(&cfg),
        ServiceOutcome::decl(&cfg),
        ExploreProgress::decl(&cfg),
        ExploreResult::decl(&cfg),
        KartaViewStats::decl(&cfg),
        PanoramaxStats::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from the Rust types by crates/mtp-app/tests/ui_types.rs (ts-rs). Do not edit.\n",
    );
    for d in decls {
        out.push_str("\nexport ");
        out.push_str(&d);
        out.push('\n');
    }
    out
}

#[test]
fn the_ui_types_are_generated_from_the_rust_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/gen/types.ts");
    let want = generated();
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("ui/src/gen");
        std::fs::write(&path, &want).expect("write ui/src/gen/types.ts");
        panic!(
            "{} was out of date and has been written again: check the UI still builds, and commit it",
            path.display()
        );
    }
}
