//! Events from the engine to whoever shows them. They carry ids; the UI re-reads state.

use crate::DeepLinkOutcome;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppEvent {
    DeepLink(DeepLinkOutcome),
    AccountsChanged,
    SequencesChanged { ids: Vec<i64> },
}
