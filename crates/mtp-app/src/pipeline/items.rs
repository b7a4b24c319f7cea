//! Working through a job's photo items: checking the files, reading them, running them a
//! few at a time and picking the most telling failure.

use futures::StreamExt;
use mtp_core::engine::{ItemState, JobCtx, StepError, StepOutcome};
use mtp_core::store::{JobItemRow, PhotoRow};
use mtp_providers::{FileStamp, UploadSource};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// `prepare` of the photo destinations: every photo is still there, with the size it had
/// when the folder was read (the upload key and the plan depend on the exact bytes).
pub(crate) async fn check_files(ctx: &JobCtx) -> Result<StepOutcome, StepError> {
    let items = ctx.items().await?;
    if items.is_empty() {
        return Err(StepError::permanent("This sequence has no photos to send."));
    }
    let mut problems = Vec::new();
    let mut count = 0;
    for item in &items {
        if item.state == ItemState::Sent || item.state == ItemState::Rejected {
            continue;
        }
        ctx.check()?;
        let problem = match tokio::fs::metadata(&item.path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => Some(format!("unreadable: {e}")),
            Ok(m) if !m.is_file() => Some("not a file any more".to_string()),
            Ok(m) if i64::try_from(m.len()).ok() != Some(item.file_size) => Some(format!(
                "changed: {} bytes, was {}",
                m.len(),
                item.file_size
            )),
            Ok(_) => None,
        };
        if let Some(p) = problem {
            count += 1;
            if problems.len() < 3 {
                problems.push(format!("{} ({p})", item.path));
            }
        }
    }
    if count == 0 {
        return Ok(StepOutcome::Advance);
    }
    let more = if count > problems.len() {
        format!(" and {} more", count - problems.len())
    } else {
        String::new()
    };
    Err(StepError::permanent(format!(
        "{count} photo file(s) changed or disappeared since the folder was read: {}{more}. \
         Put them back, or read the folder again.",
        problems.join(", ")
    )))
}

/// The stored photos of the job's sequence, by id.
pub(crate) async fn photos_by_id(ctx: &JobCtx) -> Result<HashMap<i64, PhotoRow>, StepError> {
    Ok(ctx
        .store
        .photos(ctx.sequence_id)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

/// The stored photo of an item.
pub(crate) fn photo_of<'a>(
    photos: &'a HashMap<i64, PhotoRow>,
    item: &JobItemRow,
) -> Result<&'a PhotoRow, StepError> {
    photos.get(&item.photo_id).ok_or_else(|| {
        StepError::permanent(format!(
            "{} is no longer part of this sequence in the database",
            item.file_name
        ))
    })
}

/// Runs `work` on every item, `parallel` at a time. A pause, a cancel, a transient or an
/// auth failure stops new items from starting (those running finish and save what they
/// did); a permanent failure of one item does not stop the others. Returns the most
/// telling failure: interrupted, then auth, then permanent (naming every failed photo),
/// then retry (with the longest delay a server asked for).
pub(crate) async fn run_items<T, F, Fut>(
    ctx: &JobCtx,
    items: Vec<T>,
    parallel: usize,
    work: F,
) -> Result<(), StepError>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<(), StepError>>,
{
    let stop = AtomicBool::new(false);
    let errors: Vec<StepError> = futures::stream::iter(items)
        .map(|item| {
            let stop = &stop;
            let work = &work;
            async move {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
                if let Err(e) = ctx.check() {
                    stop.store(true, Ordering::SeqCst);
                    return Some(e);
                }
                let result = work(item).await;
                if matches!(
                    result,
                    Err(StepError::Retry { .. } | StepError::Auth { .. } | StepError::Interrupted)
                ) {
                    stop.store(true, Ordering::SeqCst);
                }
                result.err()
            }
        })
        .buffer_unordered(parallel.max(1))
        .filter_map(std::future::ready)
        .collect()
        .await;
    match worst(errors) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

pub(super) fn worst(errors: Vec<StepError>) -> Option<StepError> {
    if errors.iter().any(|e| matches!(e, StepError::Interrupted)) {
        return Some(StepError::Interrupted);
    }
    if let Some(e) = errors.iter().find(|e| matches!(e, StepError::Auth { .. })) {
        return Some(e.clone());
    }
    let permanent: Vec<&String> = errors
        .iter()
        .filter_map(|e| match e {
            StepError::Permanent { message } => Some(message),
            _ => None,
        })
        .collect();
    if !permanent.is_empty() {
        let shown: Vec<&str> = permanent.iter().take(3).map(|m| m.as_str()).collect();
        let message = if permanent.len() == 1 {
            shown.join("")
        } else {
            let more = permanent.len() - shown.len();
            format!(
                "{} photos could not be sent: {}{}",
                permanent.len(),
                shown.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            )
        };
        return Some(StepError::Permanent { message });
    }
    let mut retry: Option<StepError> = None;
    for e in errors {
        if let StepError::Retry { after_ms, message } = e {
            retry = Some(match retry {
                Some(StepError::Retry {
                    after_ms: before, ..
                }) => StepError::Retry {
                    after_ms: after_ms.max(before),
                    message,
                },
                _ => StepError::Retry { after_ms, message },
            });
        }
    }
    retry
}

/// A photo's file to send as it is (read as it is sent), checking it is still the file
/// that was planned.
pub(crate) async fn photo_source(item: &JobItemRow) -> Result<UploadSource, StepError> {
    let path = PathBuf::from(&item.path);
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| StepError::permanent(format!("cannot read {}: {e}", item.path)))?;
    check_size(meta.len(), item.file_size)?;
    Ok(UploadSource::file(
        bytes::Bytes::new(),
        path,
        0,
        FileStamp::of(&meta),
    ))
}

/// Reads a whole photo, checking it is still the file that was planned.
pub(crate) fn read_photo_blocking(path: &str, file_size: i64) -> Result<Vec<u8>, StepError> {
    let data = std::fs::read(path)
        .map_err(|e| StepError::permanent(format!("cannot read {path}: {e}")))?;
    check_size(data.len() as u64, file_size)?;
    Ok(data)
}

/// The file still has the size it had when the folder was read.
pub(crate) fn check_size(len: u64, file_size: i64) -> Result<(), StepError> {
    if i64::try_from(len).ok() != Some(file_size) {
        return Err(StepError::permanent(format!(
            "the file changed since the folder was read ({len} bytes, was {file_size}): read the folder again",
        )));
    }
    Ok(())
}

/// How many of the job's items are in `state`.
pub(crate) async fn count_items(ctx: &JobCtx, state: ItemState) -> Result<usize, StepError> {
    Ok(ctx
        .items()
        .await?
        .iter()
        .filter(|i| i.state == state)
        .count())
}

/// Items that still have to go.
pub(crate) fn unsent(items: Vec<JobItemRow>) -> Vec<JobItemRow> {
    items
        .into_iter()
        .filter(|i| i.state != ItemState::Sent && i.state != ItemState::Rejected)
        .collect()
}
