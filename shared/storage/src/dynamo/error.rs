//! Mapping of DynamoDB errors onto `StoreError`.

use crate::{table, StoreError};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Classifies a failed SDK call. `size` is the item size to report if DynamoDB says the item is
/// too large (the caller's best knowledge of it).
pub(super) fn classify<E, R>(err: SdkError<E, R>, size: usize) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or_default().to_owned();
            let message = err.message().unwrap_or_default().to_owned();
            from_code(&code, &message, size)
        }
        // No (parseable) answer: the request may or may not have been applied; callers retry.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(DisplayErrorContext(&err).to_string())
        }
        _ => StoreError::Internal(DisplayErrorContext(&err).to_string()),
    }
}

/// Error codes of DynamoDB's API and of transaction cancellation reasons (which drop the
/// `Exception` suffix and use `ThrottlingError`/`ValidationError`).
pub(super) fn from_code(code: &str, message: &str, size: usize) -> StoreError {
    let code = code.strip_suffix("Exception").unwrap_or(code);
    match code {
        "ConditionalCheckFailed" => StoreError::ConditionFailed { op: None },
        "TransactionConflict" | "TransactionInProgress" => StoreError::Conflict,
        "ProvisionedThroughputExceeded"
        | "Throttling"
        | "ThrottlingError"
        | "RequestLimitExceeded"
        | "LimitExceeded"
        | "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable" => StoreError::Unavailable(format!("{code}: {message}")),
        "Validation" | "ValidationError" if is_size_message(message) => {
            StoreError::ItemTooLarge { size: size.max(table::table().max_item_bytes + 1) }
        }
        "Validation" | "ValidationError" | "ItemCollectionSizeLimitExceeded" => {
            StoreError::Invalid(format!("{code}: {message}"))
        }
        _ => StoreError::Internal(format!("{code}: {message}")),
    }
}

/// "Item size has exceeded the maximum allowed size", "Item size to update has exceeded ...".
fn is_size_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("item size") && m.contains("exceeded")
}
