//! Request bodies that may be left out.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

/// A JSON body when one is sent, `None` for an empty one. A body that is
/// sent must be declared `application/json` and parse, like `web::Json`.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    /// The JSON extractor's own error, already a problem (see `errors`).
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
        if !chunked && declared_len.unwrap_or(0) == 0 {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let json = web::Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJson(Some(json.await?.into_inner()))) })
    }
}

/// For `#[serde(default, deserialize_with = "present")]` on an optional
/// field: absent gives `None`, and `null` is not read as absent but handed
/// to `T` (so an `Option<String>` field refuses `null` as a wrong type).
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}
