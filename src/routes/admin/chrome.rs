//! What every console page's layout shows: who is signed in, the form
//! token, the one-time message and the current navigation entry.

use serde::{Deserialize, Serialize};

/// A one-time message shown on the page after a redirect.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: String,
    pub text: String,
}

/// What every page's layout needs.
pub struct Chrome {
    /// The signed-in admin, when there is one.
    pub admin_email: Option<String>,
    pub csrf: String,
    pub flash: Option<Flash>,
    /// Which navigation entry is current.
    pub nav: &'static str,
}
