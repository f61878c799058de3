//! The mail settings: `SMTP_URL`, `MAIL_FROM`, `PUBLIC_URL` (all three, or
//! none: then latchkey sends no mail) and `EMAIL_VERIFICATION`.

use super::ConfigError;
use lettre::message::Mailbox;
use std::fmt;

/// How latchkey reaches its SMTP server and what its mail says.
#[derive(Clone)]
pub struct MailSettings {
    pub smtp: SmtpServer,
    /// The `From` of every mail (`MAIL_FROM`: an address, or `Name <address>`).
    pub from: Mailbox,
    /// The address users reach latchkey at (`PUBLIC_URL`), without a
    /// trailing slash: links in mail start with it.
    pub public_url: String,
}

/// `SMTP_URL`, parsed.
#[derive(Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// User name and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte (port 465 by default).
    Implicit,
    /// `smtp://`: STARTTLS, and no mail without it, so that neither a
    /// password nor a reset link crosses the network in the clear.
    StartTlsRequired,
    /// `smtp://` to a loopback address, or with `?starttls=optional` and
    /// no password: STARTTLS when the server offers it (a local relay, a
    /// development mail catcher).
    StartTlsWhenOffered,
}

/// `EMAIL_VERIFICATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailVerification {
    /// No verification mail. `email_verified` still says whether the
    /// address was verified (by a reset link, or earlier); an email change
    /// makes it false.
    Off,
    /// Registration and email changes send a verification link; an
    /// unverified user signs in all the same.
    Optional,
    /// As `Optional`, and an unverified user's right password gets 403
    /// `email-unverified` until the link is followed.
    Required,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp)
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// The four variables as set (trimmed, empty as unset).
pub struct MailVariables {
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub public_url: Option<String>,
    pub email_verification: Option<String>,
}

/// The mail settings, `None` when `SMTP_URL` is unset, and the
/// verification mode.
pub fn parse(
    vars: MailVariables,
) -> Result<(Option<MailSettings>, EmailVerification), ConfigError> {
    let verification = match vars
        .email_verification
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("off") => EmailVerification::Off,
        Some("optional") => EmailVerification::Optional,
        Some("required") => EmailVerification::Required,
        Some(other) => {
            return Err(super::invalid(
                "EMAIL_VERIFICATION",
                other,
                "`off`, `optional` or `required`",
            ));
        }
    };
    let Some(url) = vars.smtp_url else {
        if verification != EmailVerification::Off {
            return Err(ConfigError::new(
                "SMTP_URL",
                "is not set, but EMAIL_VERIFICATION needs mail: set SMTP_URL, MAIL_FROM and \
                 PUBLIC_URL, or EMAIL_VERIFICATION=off",
            ));
        }
        for (variable, value) in [
            ("MAIL_FROM", &vars.mail_from),
            ("PUBLIC_URL", &vars.public_url),
        ] {
            if value.is_some() {
                return Err(ConfigError::new(
                    "SMTP_URL",
                    format!("is not set, but {variable} is: mail needs SMTP_URL too"),
                ));
            }
        }
        return Ok((None, verification));
    };
    let smtp = smtp_server(&url)?;
    let from = vars.mail_from.ok_or_else(|| {
        ConfigError::new(
            "MAIL_FROM",
            "must be set with SMTP_URL: the From of every mail",
        )
    })?;
    let from: Mailbox = from.parse().map_err(|_| {
        super::invalid(
            "MAIL_FROM",
            &from,
            "an address, or `Name <address>` (e.g. `latchkey <no-reply@example.com>`)",
        )
    })?;
    let public_url = vars.public_url.ok_or_else(|| {
        ConfigError::new(
            "PUBLIC_URL",
            "must be set with SMTP_URL: the address users reach latchkey at, for the links in mail",
        )
    })?;
    let public_url = public_url_of(&public_url)?;
    Ok((
        Some(MailSettings {
            smtp,
            from,
            public_url,
        }),
        verification,
    ))
}

fn smtp_server(value: &str) -> Result<SmtpServer, ConfigError> {
    const EXPECTED: &str = "`smtp://[user:password@]host[:port]` (STARTTLS) or `smtps://…` \
                            (TLS from the start)";
    let bad = || ConfigError::new("SMTP_URL", format!("is not valid; expected {EXPECTED}"));
    let url = url::Url::parse(value).map_err(|_| bad())?;
    let host = match url.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(bad()),
    };
    let optional = match url.query() {
        None => false,
        Some("starttls=optional") => true,
        Some(_) => {
            return Err(ConfigError::new(
                "SMTP_URL",
                "has a query other than `?starttls=optional`",
            ));
        }
    };
    if (url.path() != "" && url.path() != "/") || url.fragment().is_some() {
        return Err(ConfigError::new(
            "SMTP_URL",
            "has a path; expected only user, password, host and port",
        ));
    }
    let loopback = match url.host() {
        // smtp: is not a scheme the URL standard knows: its host stays
        // text, an IP address included.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let credentials = match (url.username(), url.password()) {
        ("", None) => None,
        ("", Some(_)) => return Err(ConfigError::new("SMTP_URL", "has a password but no user")),
        (user, password) => Some((
            super::percent_decode(user),
            super::percent_decode(password.unwrap_or("")),
        )),
    };
    if optional && credentials.is_some() {
        return Err(ConfigError::new(
            "SMTP_URL",
            "has a password and `?starttls=optional`: the password could cross the network in \
             the clear",
        ));
    }
    let (tls, default_port) = match url.scheme() {
        "smtps" if optional => return Err(bad()),
        "smtps" => (SmtpTls::Implicit, 465),
        "smtp" if credentials.is_none() && (optional || loopback) => {
            (SmtpTls::StartTlsWhenOffered, 587)
        }
        "smtp" => (SmtpTls::StartTlsRequired, 587),
        _ => return Err(bad()),
    };
    Ok(SmtpServer {
        host,
        port: url.port().unwrap_or(default_port),
        tls,
        credentials,
    })
}

fn public_url_of(value: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| super::invalid("PUBLIC_URL", value, why);
    let url = url::Url::parse(value).map_err(|_| bad("an http:// or https:// address"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("an http:// or https:// address"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("an address without a query, a fragment or a user"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(smtp: Option<&str>, from: Option<&str>, public: Option<&str>) -> MailVariables {
        MailVariables {
            smtp_url: smtp.map(Into::into),
            mail_from: from.map(Into::into),
            public_url: public.map(Into::into),
            email_verification: None,
        }
    }

    #[test]
    fn nothing_set_sends_no_mail() {
        let (mail, verification) = parse(vars(None, None, None)).unwrap();
        assert!(mail.is_none());
        assert_eq!(verification, EmailVerification::Off);
    }

    #[test]
    fn a_full_setting_is_read() {
        let (mail, _) = parse(vars(
            Some("smtp://mailer:p%40ss@mail.example.com:2525"),
            Some("latchkey <no-reply@example.com>"),
            Some("https://auth.example.com/"),
        ))
        .unwrap();
        let mail = mail.unwrap();
        assert_eq!(mail.smtp.host, "mail.example.com");
        assert_eq!(mail.smtp.port, 2525);
        assert_eq!(mail.smtp.tls, SmtpTls::StartTlsRequired);
        assert_eq!(
            mail.smtp.credentials,
            Some(("mailer".to_owned(), "p@ss".to_owned()))
        );
        assert_eq!(mail.public_url, "https://auth.example.com");
        assert!(
            !format!("{mail:?}").contains("p@ss"),
            "the password is never shown"
        );
        let (implicit, _) = parse(vars(
            Some("smtps://mail.example.com"),
            Some("a@example.com"),
            Some("http://localhost:8080"),
        ))
        .unwrap();
        let implicit = implicit.unwrap();
        assert_eq!(
            (implicit.smtp.tls, implicit.smtp.port),
            (SmtpTls::Implicit, 465)
        );
        let (plain, _) = parse(vars(
            Some("smtp://127.0.0.1:1025"),
            Some("a@example.com"),
            Some("http://localhost:8080"),
        ))
        .unwrap();
        assert_eq!(plain.unwrap().smtp.tls, SmtpTls::StartTlsWhenOffered);
        for (url, tls) in [
            ("smtp://mail.example.com", SmtpTls::StartTlsRequired),
            ("smtp://localhost:25", SmtpTls::StartTlsWhenOffered),
            ("smtp://u:p@127.0.0.1:25", SmtpTls::StartTlsRequired),
            (
                "smtp://mailpit:1025?starttls=optional",
                SmtpTls::StartTlsWhenOffered,
            ),
        ] {
            let (mail, _) =
                parse(vars(Some(url), Some("a@example.com"), Some("http://x"))).unwrap();
            assert_eq!(mail.unwrap().smtp.tls, tls, "{url}");
        }
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let from = Some("a@example.com");
        let public = Some("https://auth.example.com");
        for (case, variable) in [
            (
                vars(Some("http://mail.example.com"), from, public),
                "SMTP_URL",
            ),
            (vars(Some("smtp://"), from, public), "SMTP_URL"),
            (vars(Some("mail.example.com"), from, public), "SMTP_URL"),
            (vars(Some("smtp://h/path"), from, public), "SMTP_URL"),
            (vars(Some("smtp://h?x=1"), from, public), "SMTP_URL"),
            (
                vars(Some("smtp://u:p@h?starttls=optional"), from, public),
                "SMTP_URL",
            ),
            (vars(Some("smtp://h"), None, public), "MAIL_FROM"),
            (
                vars(Some("smtp://h"), Some("not an address"), public),
                "MAIL_FROM",
            ),
            (
                vars(
                    Some("smtp://h"),
                    Some("a@b.example\r\nBcc: x@y.example"),
                    public,
                ),
                "MAIL_FROM",
            ),
            (vars(Some("smtp://h"), from, None), "PUBLIC_URL"),
            (vars(Some("smtp://h"), from, Some("ftp://x")), "PUBLIC_URL"),
            (
                vars(Some("smtp://h"), from, Some("https://x/?a=1")),
                "PUBLIC_URL",
            ),
            (vars(None, from, None), "SMTP_URL"),
            (vars(None, None, public), "SMTP_URL"),
        ] {
            assert_eq!(parse(case).unwrap_err().variable, variable);
        }
        let mut required = vars(None, None, None);
        required.email_verification = Some("required".into());
        assert_eq!(parse(required).unwrap_err().variable, "SMTP_URL");
        let mut unknown = vars(None, None, None);
        unknown.email_verification = Some("sometimes".into());
        assert_eq!(parse(unknown).unwrap_err().variable, "EMAIL_VERIFICATION");
    }
}
