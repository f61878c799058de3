//! Where a request came from, as recorded on sessions and in the audit log
//! and as counted by the per-address throttle.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use std::convert::Infallible;
use std::future::{Ready, ready};

/// The longest user agent kept; the rest is cut off.
const MAX_USER_AGENT_CHARS: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The peer's IP address.
    pub addr: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn of(req: &HttpRequest) -> Self {
        let addr = req.peer_addr().map(|peer| peer.ip().to_string());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect()
            });
        ClientInfo { addr, user_agent }
    }
}

impl FromRequest for ClientInfo {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let addr = req.peer_addr().map(|peer| peer.ip().to_string());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect()
            });
        ready(Ok(ClientInfo { addr, user_agent }))
    }
}
