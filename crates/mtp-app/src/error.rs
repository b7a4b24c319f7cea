//! Errors as the UI and the CLI see them: a stable code the UI can branch on, and a message
//! that says what is wrong and what to do.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// Stable machine-readable code; add one only when a caller branches on it.
    pub code: &'static str,
    pub message: String,
}

impl AppError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        AppError::new("invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::new("not_found", message)
    }
}

impl From<mtp_core::store::StoreError> for AppError {
    fn from(e: mtp_core::store::StoreError) -> Self {
        use mtp_core::store::StoreError as E;
        let code = match e {
            E::Corrupt { .. } => "db_corrupt",
            E::NewerSchema { .. } => "db_newer",
            _ => "db_error",
        };
        AppError::new(code, e.to_string())
    }
}

pub type AppResult<T> = Result<T, AppError>;
