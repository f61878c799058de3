//! Request bodies of the JSON API.
//!
//! [`Json`] accepts only a JSON object (serde's derived structs would also
//! take an array of the fields in order), and its errors never echo the
//! values that were sent or name internal types.

use super::error::ApiError;
use actix_web::error::JsonPayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Turns actix-web's JSON extractor errors into problems: 413 before the
/// body is read when it is too long, 415 for a body not declared JSON, 400
/// for anything that does not parse into the request type.
pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType("application/json"),
        JsonPayloadError::Deserialize(err) => {
            ApiError::BadRequest(format!("the body is not valid JSON: {}", describe(&err)))
        }
        other => ApiError::BadRequest(format!("the body could not be read: {other}")),
    }
}

/// A JSON object body parsed into `T`. Size (413) and content type (415)
/// are checked by actix-web's JSON extractor first, configured in
/// `router.rs`.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let object = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let Value::Object(object) = object.await?.into_inner() else {
                return Err(ApiError::BadRequest("the body must be a JSON object".into()).into());
            };
            parse_object(object).map(Json).map_err(Into::into)
        })
    }
}

fn parse_object<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(object)).map_err(|err| {
        ApiError::BadRequest(format!(
            "the body is not valid for this request: {}",
            describe(&err)
        ))
    })
}

/// serde_json's message without the values it quotes (a password sent in
/// the wrong field must not come back in the answer or reach a log).
pub fn describe(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message);
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[start] as char;
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find(quote) {
            // Backticks name fields: keep them, but short.
            Some(end) if quote == '`' => {
                let name: String = after[..end].chars().take(40).collect();
                out.push_str(&format!("`{name}`"));
                rest = &after[end + 1..];
            }
            Some(end) => {
                out.push_str("(value)");
                rest = &after[end + 1..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON body when one is sent, `None` for an empty one.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
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
        let json = Json::<T>::from_request(req, payload);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_field_names_and_drop_values() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Login {
            email: String,
            password: String,
        }
        let wrong_type =
            serde_json::from_str::<Login>(r#"{"email": 5, "password": "x"}"#).unwrap_err();
        assert_eq!(
            describe(&wrong_type),
            "invalid type: integer `5`, expected a string"
        );
        let err = serde_json::from_value::<Login>(
            serde_json::json!({"email": "a", "password": "a", "hunter2": 1}),
        )
        .unwrap_err();
        assert!(
            describe(&err).starts_with("unknown field `hunter2`"),
            "{}",
            describe(&err)
        );
        let err = serde_json::from_value::<bool>(serde_json::json!("hunter2hunter2")).unwrap_err();
        assert!(!describe(&err).contains("hunter2"), "{}", describe(&err));
    }
}
