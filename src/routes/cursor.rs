//! Opaque page cursors for user listings (API and console): the sort key
//! of the last row shown, base64url-encoded. A cursor this server did not
//! give out, or one from another sort, is refused.

use crate::db::users::{After, UserSort};
use crate::routes::api::is_well_formed_id;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime};

pub fn encode(after: &After) -> String {
    let micros = |at: &NaiveDateTime| at.and_utc().timestamp_micros().to_string();
    let raw = match after {
        After::Newest(at, id) => format!("n:{}:{id}", micros(at)),
        After::Email(email) => format!("e:{email}"),
        After::LastLogin(Some(at), id) => format!("l:{}:{id}", micros(at)),
        After::LastLogin(None, id) => format!("l:-:{id}"),
    };
    URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode(sort: UserSort, cursor: &str) -> Option<After> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (kind, rest) = raw.split_once(':')?;
    let time_and_id = |rest: &str| -> Option<(Option<NaiveDateTime>, String)> {
        let (micros, id) = rest.split_once(':')?;
        if !is_well_formed_id(id) {
            return None;
        }
        let at = match micros {
            "-" => None,
            m => Some(DateTime::from_timestamp_micros(m.parse().ok()?)?.naive_utc()),
        };
        Some((at, id.to_owned()))
    };
    match (sort, kind) {
        (UserSort::Newest, "n") => match time_and_id(rest)? {
            (Some(at), id) => Some(After::Newest(at, id)),
            (None, _) => None,
        },
        (UserSort::Email, "e") => Some(After::Email(rest.to_owned())),
        (UserSort::LastLogin, "l") => time_and_id(rest).map(|(at, id)| After::LastLogin(at, id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let at = DateTime::from_timestamp_micros(1_796_000_000_123_456)
            .unwrap()
            .naive_utc();
        let id = "3f1c0a52-8a8e-4a55-9a0b-3b0b8f7a9c11".to_owned();
        for (sort, after) in [
            (UserSort::Newest, After::Newest(at, id.clone())),
            (UserSort::Email, After::Email("a:b@example.com".into())),
            (UserSort::LastLogin, After::LastLogin(Some(at), id.clone())),
            (UserSort::LastLogin, After::LastLogin(None, id.clone())),
        ] {
            assert_eq!(decode(sort, &encode(&after)), Some(after));
        }
        assert_eq!(
            decode(UserSort::Email, &encode(&After::Newest(at, id))),
            None
        );
        for garbage in ["", "!!", "bm9wZQ", "bjoxOjI"] {
            assert_eq!(decode(UserSort::Newest, garbage), None, "{garbage}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoding_any_text_never_panics(cursor in "\\PC{0,200}") {
            for sort in [UserSort::Newest, UserSort::Email, UserSort::LastLogin] {
                let _ = decode(sort, &cursor);
            }
        }

        #[test]
        fn decoding_any_bytes_behind_base64_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let cursor = URL_SAFE_NO_PAD.encode(bytes);
            for sort in [UserSort::Newest, UserSort::Email, UserSort::LastLogin] {
                let _ = decode(sort, &cursor);
            }
        }
    }
}
