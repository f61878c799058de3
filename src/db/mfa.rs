//! Queries on the two-factor tables: `mfa_totp` (a user's TOTP secret and
//! the last time step accepted), `mfa_recovery_codes` and `mfa_challenges`
//! (sign-ins waiting for their code), and the `users.mfa` flag.

use super::schema::{mfa_challenges, mfa_recovery_codes, mfa_totp, users};
use super::{DbConnection, per_backend};
use crate::domain::UserId;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_totp)]
pub struct TotpRow {
    pub user_id: String,
    /// The shared secret, as sealed for the store.
    pub secret: Vec<u8>,
    pub created_at: NaiveDateTime,
    /// `None` while the enrolment waits for its first right code.
    pub confirmed_at: Option<NaiveDateTime>,
    pub last_step: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_challenges)]
pub struct ChallengeRow {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_recovery_codes)]
pub struct RecoveryCodeRow {
    pub user_id: String,
    pub code_hash: String,
    pub used_at: Option<NaiveDateTime>,
}

pub fn totp(conn: &mut DbConnection, user: &UserId) -> QueryResult<Option<TotpRow>> {
    mfa_totp::table
        .find(user.as_str())
        .select(TotpRow::as_select())
        .first(conn)
        .optional()
}

/// Starts (or starts again) an enrolment: a pending secret replaces any
/// pending one. The caller has checked that MFA is not on.
pub fn start_enrolment(conn: &mut DbConnection, row: &TotpRow) -> QueryResult<()> {
    diesel::delete(mfa_totp::table.find(&row.user_id)).execute(conn)?;
    diesel::insert_into(mfa_totp::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Turns a pending enrolment on, with its first accepted step; false when
/// there was none pending.
pub fn confirm(
    conn: &mut DbConnection,
    user: &UserId,
    step: i64,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let confirmed = diesel::update(
        mfa_totp::table
            .filter(mfa_totp::user_id.eq(user.as_str()))
            .filter(mfa_totp::confirmed_at.is_null()),
    )
    .set((mfa_totp::confirmed_at.eq(at), mfa_totp::last_step.eq(step)))
    .execute(conn)?;
    if confirmed == 1 {
        set_flag(conn, user, true, at)?;
    }
    Ok(confirmed == 1)
}

/// Accepts time step `step` for `user` if it is later than the last one
/// accepted: one statement, so two uses of one code (on two instances at
/// once, too) cannot both pass.
pub fn accept_step(conn: &mut DbConnection, user: &UserId, step: i64) -> QueryResult<bool> {
    let accepted = diesel::update(
        mfa_totp::table
            .filter(mfa_totp::user_id.eq(user.as_str()))
            .filter(mfa_totp::confirmed_at.is_not_null())
            .filter(
                mfa_totp::last_step
                    .is_null()
                    .or(mfa_totp::last_step.lt(step)),
            ),
    )
    .set(mfa_totp::last_step.eq(step))
    .execute(conn)?;
    Ok(accepted == 1)
}

/// Turns MFA off: the secret, the recovery codes and pending challenges go.
pub fn remove(conn: &mut DbConnection, user: &UserId, at: NaiveDateTime) -> QueryResult<bool> {
    let removed = diesel::delete(mfa_totp::table.find(user.as_str())).execute(conn)?;
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user.as_str())))
        .execute(conn)?;
    diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user.as_str())))
        .execute(conn)?;
    set_flag(conn, user, false, at)?;
    Ok(removed == 1)
}

fn set_flag(
    conn: &mut DbConnection,
    user: &UserId,
    on: bool,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(user))
        .set((users::mfa.eq(on), users::updated_at.eq(at)))
        .execute(conn)
        .map(|_| ())
}

/// Replaces every recovery code of `user` with these (hashes).
pub fn replace_recovery_codes(
    conn: &mut DbConnection,
    user: &UserId,
    hashes: &[String],
) -> QueryResult<()> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user.as_str())))
        .execute(conn)?;
    let rows: Vec<RecoveryCodeRow> = hashes
        .iter()
        .map(|hash| RecoveryCodeRow {
            user_id: user.as_str().to_owned(),
            code_hash: hash.clone(),
            used_at: None,
        })
        .collect();
    // A batch insert is one statement per backend.
    per_backend!(conn, |c| diesel::insert_into(mfa_recovery_codes::table)
        .values(&rows)
        .execute(c))
    .map(|_| ())
}

/// Spends one recovery code; false when it is unknown or spent.
pub fn use_recovery_code(
    conn: &mut DbConnection,
    user: &UserId,
    hash: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let used = diesel::update(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user.as_str()))
            .filter(mfa_recovery_codes::code_hash.eq(hash))
            .filter(mfa_recovery_codes::used_at.is_null()),
    )
    .set(mfa_recovery_codes::used_at.eq(at))
    .execute(conn)?;
    Ok(used == 1)
}

/// Whether `hash` is an unused recovery code of `user`.
pub fn recovery_code_unused(
    conn: &mut DbConnection,
    user: &UserId,
    hash: &str,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user.as_str()))
            .filter(mfa_recovery_codes::code_hash.eq(hash))
            .filter(mfa_recovery_codes::used_at.is_null()),
    ))
    .get_result(conn)
}

/// How many recovery codes of `user` are left unused.
pub fn recovery_codes_left(conn: &mut DbConnection, user: &UserId) -> QueryResult<i64> {
    mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user.as_str()))
        .filter(mfa_recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}

pub fn insert_challenge(conn: &mut DbConnection, row: &ChallengeRow) -> QueryResult<()> {
    diesel::insert_into(mfa_challenges::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn challenge(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<ChallengeRow>> {
    mfa_challenges::table
        .find(token_hash)
        .select(ChallengeRow::as_select())
        .first(conn)
        .optional()
}

/// Spends a challenge that is unspent and unexpired at `at`; false when
/// it was not (used twice, late).
pub fn spend_challenge(
    conn: &mut DbConnection,
    token_hash: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let spent = diesel::update(
        mfa_challenges::table
            .filter(mfa_challenges::token_hash.eq(token_hash))
            .filter(mfa_challenges::used_at.is_null())
            .filter(mfa_challenges::expires_at.gt(at)),
    )
    .set(mfa_challenges::used_at.eq(at))
    .execute(conn)?;
    Ok(spent == 1)
}

/// Deletes challenges that expired before `cutoff`.
pub fn sweep_challenges(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(mfa_challenges::table.filter(mfa_challenges::expires_at.lt(cutoff)))
        .execute(conn)
}
