//! The error answers many operations share, declared once for the OpenAPI
//! document: a handler lists them by name in its `responses(...)`. Each is
//! a problem (`application/problem+json`, see `openapi::ProblemResponses`),
//! and a 400 for a malformed body, 413, 415 and 503 are added to every
//! operation that can give them.

use super::error::Problem;
use utoipa::IntoResponses;

/// 401: no access token, or one that is not valid now.
#[derive(IntoResponses)]
#[response(status = 401, description = "No valid access token")]
pub struct NoToken(pub Problem);

/// 403: the caller is not an admin.
#[derive(IntoResponses)]
#[response(status = 403, description = "Not an admin")]
pub struct NotAdmin(pub Problem);

/// 403: another user's resource, and the caller is not an admin.
#[derive(IntoResponses)]
#[response(status = 403, description = "Not this user and not an admin")]
pub struct NotAllowed(pub Problem);

/// 403: another user's resource and the caller is not an admin, or a
/// non-admin sent `role` or `disabled`.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "Not this user and not an admin, or `role`/`disabled` from a non-admin"
)]
pub struct NotAllowedToChange(pub Problem);

/// 403: a non-admin sent `role` or `disabled`.
#[derive(IntoResponses)]
#[response(status = 403, description = "`role`/`disabled` from a non-admin")]
pub struct NoAdminFields(pub Problem);

/// 404: no user has this id.
#[derive(IntoResponses)]
#[response(status = 404, description = "No such user")]
pub struct NoSuchUser(pub Problem);

/// 409: a change would take the email of another user or the last admin's
/// rights.
#[derive(IntoResponses)]
#[response(status = 409, description = "Email taken, or the last admin")]
pub struct Conflicts(pub Problem);

/// 409: deleting the last admin.
#[derive(IntoResponses)]
#[response(status = 409, description = "The last admin")]
pub struct LastAdmin(pub Problem);

/// 422: a field breaks a rule; `errors` says which and why.
#[derive(IntoResponses)]
#[response(status = 422, description = "A field breaks a rule")]
pub struct Invalid(pub Problem);

/// 429: too many failed sign-ins for the account or the address.
#[derive(IntoResponses)]
#[response(
    status = 429,
    description = "Too many failed sign-ins",
    headers(("Retry-After" = u64, description = "Seconds to wait"))
)]
pub struct Throttled(pub Problem);
