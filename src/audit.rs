//! The audit log: who did what to whom, from where, and how it went.
//! An entry is written inside the same transaction as the change it
//! records, so there is no change without its entry and no entry without
//! its change. Details never hold a password, a hash or a token.

use crate::client::ClientInfo;
use crate::db::DbConnection;
use crate::db::{audit, models::NewAuditRow};
use chrono::NaiveDateTime;
use diesel::QueryResult;

/// The actor of events nobody signed in for (start-up, sweeps).
pub const SYSTEM: &str = "system";
/// The actor of events from a caller who is not (yet) known.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }
}

/// One entry about to be written.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: &'static str,
    pub target: Option<&'a str>,
    pub client: Option<&'a ClientInfo>,
    pub outcome: Outcome,
    pub detail: Option<serde_json::Value>,
}

impl<'a> Event<'a> {
    pub fn new(actor: &'a str, action: &'static str, outcome: Outcome) -> Self {
        Self {
            actor,
            action,
            target: None,
            client: None,
            outcome,
            detail: None,
        }
    }

    pub fn target(mut self, target: &'a str) -> Self {
        self.target = Some(target);
        self
    }

    pub fn client(mut self, client: &'a ClientInfo) -> Self {
        self.client = Some(client);
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn write(self, conn: &mut DbConnection, at: NaiveDateTime) -> QueryResult<()> {
        audit::insert(
            conn,
            &NewAuditRow {
                at,
                actor: self.actor.to_owned(),
                action: self.action.to_owned(),
                target: self.target.map(str::to_owned),
                client_addr: self.client.and_then(|c| c.addr.clone()),
                outcome: self.outcome.as_str().to_owned(),
                detail: self.detail.map(|d| d.to_string()),
            },
        )
        .map(|_| ())
    }
}
