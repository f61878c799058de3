//! "Where is this request from", for both faces: the client as
//! `TRUSTED_PROXIES` allow it to be known (see `crate::client`).

use crate::client::ClientInfo;
use crate::state::AppState;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use ipnet::IpNet;
use std::convert::Infallible;
use std::future::{Ready, ready};

fn trusted_proxies(req: &HttpRequest) -> &[IpNet] {
    req.app_data::<web::Data<AppState>>()
        .map_or(&[], |state| state.settings.trusted_proxies.as_slice())
}

/// The client of `req` under this server's settings.
pub fn client_of(req: &HttpRequest) -> ClientInfo {
    ClientInfo::of(req, trusted_proxies(req))
}

/// Whether a trusted proxy says `req` came over TLS.
pub fn came_over_tls(req: &HttpRequest) -> bool {
    crate::client::came_over_tls(req, trusted_proxies(req))
}

impl FromRequest for ClientInfo {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(client_of(req)))
    }
}
