//! How failures reach the engine: provider and app errors mapped to what the engine does
//! with them (retry, fail, wait for a sign-in), and one photo's failure named on its item.

use crate::{App, AppError};
use mtp_core::Destination;
use mtp_core::engine::{JobCtx, StepError};
use mtp_core::store::{Account, JobItemRow};
use mtp_providers::{ErrorKind, ProviderError};

/// A failed call, as the engine should treat it.
pub(crate) fn provider_step_error(e: ProviderError) -> StepError {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::Retry { after } => StepError::Retry {
            after_ms: after.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            message,
        },
        // The client already re-read the offset a few times: try again soon.
        ErrorKind::OffsetInvalid => StepError::Retry {
            after_ms: Some(0),
            message,
        },
        ErrorKind::Auth => StepError::Auth { message },
        ErrorKind::Permanent => StepError::Permanent { message },
    }
}

/// An app-level failure (no account, a refused refresh, the database), for the engine.
pub(crate) fn app_step_error(e: AppError) -> StepError {
    match e.code {
        "needs_reauth" | "not_connected" | "auth" => StepError::Auth { message: e.message },
        "network" | "db_error" | "internal" => StepError::Retry {
            after_ms: None,
            message: e.message,
        },
        _ => StepError::Permanent { message: e.message },
    }
}

/// The stored account of `service` with a usable token.
pub(crate) async fn account(app: &App, service: Destination) -> Result<Account, StepError> {
    app.access_token(service).await.map_err(app_step_error)
}

/// Marks one photo's failure on its item (its state unchanged) and returns the job-level
/// error naming the file. Non-permanent failures pass through unchanged.
pub(crate) async fn item_error(ctx: &JobCtx, item: &JobItemRow, error: StepError) -> StepError {
    match error {
        StepError::Permanent { message } => {
            let _ = ctx
                .save_item(
                    item.photo_id,
                    item.state,
                    None,
                    item.remote_offset,
                    None,
                    Some(&message),
                )
                .await;
            StepError::Permanent {
                message: format!("{}: {message}", item.file_name),
            }
        }
        other => other,
    }
}
