//! criterion benches for the hot functions: issuing and verifying an access
//! token, HS256 and EdDSA (the extractor's whole work, without I/O), verifying a password on
//! the hasher threads, and one refresh rotation against a real SQLite file.
//!
//! `cargo bench --bench hot_paths`

use chrono::{TimeDelta, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use latchkey::auth::keys::KeyRing;
use latchkey::auth::password::Hasher;
use latchkey::auth::revocation::RevocationSet;
use latchkey::auth::sessions::{self, Lifetimes, Refresh};
use latchkey::auth::tokens::TokenService;
use latchkey::client::ClientInfo;
use latchkey::config::Settings;
use latchkey::db::{self, keys as key_store, models::NewUserRow, users};
use latchkey::domain::{KeyAlgorithm, PasswordPolicy, Role, UserId};
use std::hint::black_box;

fn settings(db: &str) -> Settings {
    Settings::from_lookup(|name| (name == "DATABASE_URL").then(|| db.to_owned())).unwrap()
}

fn tokens(c: &mut Criterion) {
    for algorithm in [KeyAlgorithm::Hs256, KeyAlgorithm::EdDsa] {
        tokens_of(c, algorithm);
    }
}

/// Issue and verify with a ring whose active key is of `algorithm`.
fn tokens_of(c: &mut Criterion, algorithm: KeyAlgorithm) {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path().join("b.db").to_str().unwrap());
    let pool = db::open(&settings.database, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let window = TimeDelta::seconds(300);
    latchkey::auth::keys::prepare(&mut conn, algorithm, None, Utc::now().naive_utc(), window)
        .unwrap();
    let keys = KeyRing::new(&key_store::all(&mut conn).unwrap(), window).unwrap();
    let service = TokenService::new(&settings);
    let revocations = RevocationSet::new(window);
    // A realistic set: a few hundred recently revoked sessions.
    revocations.insert_all((0..500).map(|n| format!("revoked-{n}")), Utc::now());
    let ends = Utc::now() + TimeDelta::hours(1);
    c.bench_function(&format!("token issue ({algorithm})"), |b| {
        b.iter(|| {
            service.issue(
                &keys,
                black_box("user-id"),
                black_box("session-id"),
                Role::User,
                ends,
                Utc::now(),
            )
        })
    });
    let token = service
        .issue(&keys, "user-id", "session-id", Role::User, ends, Utc::now())
        .unwrap()
        .token;
    // A token's first request runs the whole check (and remembers it);
    // every later request with it checks only what can change.
    c.bench_function(&format!("token verify, first request ({algorithm})"), |b| {
        b.iter_batched(
            || {
                service
                    .issue(&keys, "user-id", "session-id", Role::User, ends, Utc::now())
                    .unwrap()
                    .token
            },
            |token| {
                service
                    .verify(black_box(&token), &keys, &revocations, Utc::now())
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function(
        &format!("token verify, later requests ({algorithm})"),
        |b| {
            b.iter(|| {
                service
                    .verify(black_box(&token), &keys, &revocations, Utc::now())
                    .unwrap()
            })
        },
    );
}

fn passwords(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hasher = Hasher::start(1, 16).unwrap();
    let password = PasswordPolicy::parse("amber-falcon-ridge-2041", &[]).unwrap();
    let phc = runtime.block_on(hasher.hash(&password)).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("verify (Argon2id m=19456 t=2 p=1)", |b| {
        b.iter(|| {
            runtime
                .block_on(hasher.verify(black_box("amber-falcon-ridge-2041"), Some(&phc)))
                .unwrap()
        })
    });
    group.finish();
}

fn refresh(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path().join("r.db").to_str().unwrap());
    let pool = db::open(&settings.database, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let now = Utc::now().naive_utc();
    let user = users::insert(
        &mut conn,
        &NewUserRow {
            id: &UserId::generate(),
            email: "bench@example.com",
            first_name: "B",
            last_name: "C",
            password_hash: "$argon2id$unused",
            role: Role::User,
            disabled: false,
            created_at: now,
            updated_at: now,
            search_text: "bench@example.com".into(),
            email_verified: false,
        },
    )
    .unwrap();
    let lifetimes = Lifetimes::new(&settings);
    let client = ClientInfo::default();
    let (_, mut token) = sessions::open(&mut conn, &user, &client, lifetimes, now).unwrap();
    c.bench_function("refresh rotation (one write transaction)", |b| {
        b.iter(|| {
            let outcome = db::write(&mut conn, |conn| {
                sessions::rotate(conn, &token, &client, lifetimes, Utc::now().naive_utc())
            })
            .unwrap();
            match outcome {
                Refresh::Rotated(rotated) => token = rotated.refresh_token,
                _ => panic!("the newest token rotates"),
            }
        })
    });
}

criterion_group!(benches, tokens, passwords, refresh);
criterion_main!(benches);
