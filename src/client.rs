//! Where a request came from, as recorded on sessions and in the audit log
//! and as counted by the per-address throttle.
//!
//! The address is the socket's peer, unless that peer is one of
//! `TRUSTED_PROXIES`: then `X-Forwarded-For` is read from the right, and
//! the first address that is not itself a trusted proxy is the client. A
//! header from anyone else is ignored, so nobody can pick their own
//! address to dodge the throttle.

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;
use std::net::IpAddr;

/// The longest user agent kept; the rest is cut off.
const MAX_USER_AGENT_CHARS: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP address.
    pub addr: Option<String>,
    pub user_agent: Option<String>,
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client's address as `proxies` allow it to be known.
pub fn client_ip(req: &HttpRequest, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted(proxies, peer) {
        return Some(peer);
    }
    let mut client = peer;
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = forwarded
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted(proxies, ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(client)
}

/// Whether the request reached us over TLS: only a trusted proxy can say
/// so (`X-Forwarded-Proto: https`); latchkey itself serves plain HTTP.
pub fn came_over_tls(req: &HttpRequest, proxies: &[IpNet]) -> bool {
    req.peer_addr()
        .is_some_and(|peer| trusted(proxies, peer.ip()))
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

impl ClientInfo {
    /// The client of `req`, believing `X-Forwarded-For` only from `proxies`.
    pub fn of(req: &HttpRequest, proxies: &[IpNet]) -> Self {
        let addr = client_ip(req, proxies).map(|ip| ip.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(req: &HttpRequest, proxies: &[&str]) -> String {
        let proxies: Vec<IpNet> = proxies.iter().map(|p| p.parse().unwrap()).collect();
        client_ip(req, &proxies).unwrap().to_string()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.5:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.9"))
            .to_http_request();
        assert_eq!(ip(&req, &[]), "10.0.0.5", "no proxies trusted");
        assert_eq!(
            ip(&req, &["10.0.0.0/8"]),
            "203.0.113.7",
            "the first untrusted hop from the right"
        );
        let garbage = TestRequest::default()
            .peer_addr("10.0.0.5:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "not-an-ip"))
            .to_http_request();
        assert_eq!(ip(&garbage, &["10.0.0.0/8"]), "10.0.0.5");
    }
}
