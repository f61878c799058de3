//! Password hashing: Argon2id at OWASP's parameters, on a few dedicated
//! threads fed by a bounded queue.
//!
//! Each hasher thread reuses one Argon2 memory buffer (19 MiB) while jobs
//! keep coming and gives it back to the operating system after
//! [`IDLE_RELEASE`] without one. Hashing through plain `web::block` was
//! measured at 4.4 GiB resident during a burst of sign-ins, because every
//! blocking thread kept its own freed buffer; two threads that reuse theirs
//! stay under 64 MiB. glibc's mmap threshold is pinned (see
//! [`tune_allocator`]) so a freed buffer really leaves the process. The
//! threads run under `SCHED_IDLE`, so any request worker that wakes up takes
//! the CPU from them at once: a sign-in flood slows sign-ins rather than
//! everything else, and a full queue answers "busy" instead of growing
//! without bound.

use crate::domain::Password;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a hasher thread keeps its buffer without a job.
pub const IDLE_RELEASE: Duration = Duration::from_secs(2);

/// OWASP's minimum for Argon2id: m=19456 KiB, t=2, p=1.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue is full: the caller should answer 503 with `Retry-After`.
    #[error("the password hasher is busy")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

enum Job {
    Hash {
        password: String,
        reply: oneshot::Sender<Result<String, HashError>>,
    },
    Verify {
        password: String,
        phc: String,
        reply: oneshot::Sender<Result<bool, HashError>>,
    },
}

/// A handle on the hasher threads; cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    jobs: Sender<Job>,
    dummy_hash: Arc<str>,
}

impl Hasher {
    /// Starts `threads` hasher threads behind a queue of `queue` jobs, and
    /// makes the hash that unknown emails are verified against (same
    /// parameters as real ones).
    pub fn start(threads: usize, queue: usize) -> Result<Self, HashError> {
        let threads = threads.max(1);
        tune_allocator();
        let (jobs, queue) = crossbeam_channel::bounded(queue.max(1));
        for n in 0..threads {
            let queue: Receiver<Job> = queue.clone();
            std::thread::Builder::new()
                .name(format!("latchkey-hasher-{n}"))
                .spawn(move || HasherThread::new().serve(queue))
                .map_err(|e| HashError::Failed(format!("cannot start a hasher thread: {e}")))?;
        }
        let mut random = [0u8; 32];
        fill_random(&mut random);
        let dummy_hash = HasherThread::new().hash(&random)?;
        Ok(Self {
            jobs,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password (one that passed the policy) into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        self.rehash(password.expose()).await
    }

    /// Hashes a password that was just verified, to replace a hash made
    /// with outdated parameters.
    pub async fn rehash(&self, password: &str) -> Result<String, HashError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash {
            password: password.to_owned(),
            reply,
        })?;
        answer
            .await
            .map_err(|_| HashError::Failed("the hasher thread stopped".into()))?
    }

    /// Checks `password` against a stored PHC string; `None` verifies
    /// against the dummy hash, so an unknown email costs the same time.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, HashError> {
        let (reply, answer) = oneshot::channel();
        let phc = phc.unwrap_or(&self.dummy_hash).to_owned();
        self.submit(Job::Verify {
            password: password.to_owned(),
            phc,
            reply,
        })?;
        answer
            .await
            .map_err(|_| HashError::Failed("the hasher thread stopped".into()))?
    }

    /// How many jobs wait for a hasher thread.
    pub fn queue_depth(&self) -> usize {
        self.jobs.len()
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => HashError::Busy,
            TrySendError::Disconnected(_) => HashError::Failed("the hasher threads stopped".into()),
        })
    }
}

/// Whether a stored hash was made with other parameters than today's, so
/// the next successful sign-in should replace it.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    let current = (M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN));
    hash.algorithm != Algorithm::Argon2id.ident()
        || hash.version != Some(Version::V0x13.into())
        || Params::try_from(&hash)
            .map(|p| (p.m_cost(), p.t_cost(), p.p_cost(), p.output_len()) != current)
            .unwrap_or(true)
}

/// Fills `buf` from the operating system's random generator.
pub fn fill_random(buf: &mut [u8]) {
    // Without OS randomness no secret can be made safely; there is no
    // sensible way to go on.
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// One hasher thread's state: the memory buffer it reuses.
struct HasherThread {
    blocks: Vec<Block>,
}

impl HasherThread {
    fn new() -> Self {
        Self { blocks: Vec::new() }
    }

    fn serve(mut self, queue: Receiver<Job>) {
        lower_this_threads_priority();
        loop {
            let job = match queue.recv_timeout(IDLE_RELEASE) {
                Ok(job) => job,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if !self.blocks.is_empty() {
                        self.blocks = Vec::new();
                        release_free_memory();
                    }
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            };
            match job {
                Job::Hash { password, reply } => {
                    let _ = reply.send(self.hash(password.as_bytes()));
                }
                Job::Verify {
                    password,
                    phc,
                    reply,
                } => {
                    let _ = reply.send(self.verify(password.as_bytes(), &phc));
                }
            }
        }
    }

    fn hash(&mut self, password: &[u8]) -> Result<String, HashError> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).map_err(failed)?;
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt);
        let mut out = [0u8; OUTPUT_LEN];
        self.compute(
            Algorithm::Argon2id,
            Version::V0x13,
            params.clone(),
            password,
            &salt,
            &mut out,
        )?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(failed)?,
            salt: Some(Salt::new(&salt).map_err(failed)?),
            hash: Some(Output::new(&out).map_err(failed)?),
        };
        Ok(hash.to_string())
    }

    fn verify(&mut self, password: &[u8], phc: &str) -> Result<bool, HashError> {
        let hash = PasswordHash::new(phc).map_err(failed)?;
        let algorithm = Algorithm::try_from(hash.algorithm.as_str()).map_err(failed)?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).map_err(failed)?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).map_err(failed)?;
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return Err(HashError::Failed(
                "stored hash lacks a salt or output".into(),
            ));
        };
        let mut out = vec![0u8; expected.len()];
        self.compute(algorithm, version, params, password, salt, &mut out)?;
        // `Output`'s equality is constant-time.
        Ok(Output::new(&out).map_err(failed)? == *expected)
    }

    fn compute(
        &mut self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        let blocks = params.block_count();
        if self.blocks.len() < blocks {
            self.blocks.resize(blocks, Block::default());
        }
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, out, &mut self.blocks[..blocks])
            .map_err(failed)
    }
}

fn failed(err: impl std::fmt::Display) -> HashError {
    HashError::Failed(err.to_string())
}

/// `SCHED_IDLE` for the calling thread (Linux schedules each thread on its
/// own): a request worker that wakes up preempts it at once, where nice 10
/// still let the guarded route's p99 triple during a sign-in storm. If the
/// policy cannot be set, nice 19.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls only read their arguments; pid 0 / `gettid` name
    // the calling thread, so no other thread is affected.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::gettid();
            if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) != 0 {
                log::debug!("could not lower the hasher thread's priority");
            }
        }
    }
}

/// Tunes glibc's allocator for a server that is mostly idle between bursts:
///
/// - the mmap threshold is pinned at 1 MiB. By default glibc raises it to
///   the size of each freed mmap'd block, after which a 19 MiB Argon2
///   buffer comes from the heap and stays resident once freed; pinned,
///   every such buffer is mapped on allocation and unmapped on free;
/// - at most two arenas (glibc's default is eight per core): each thread
///   that allocates would otherwise get its own, and each keeps its free
///   pages.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tunables and may be called at
    // any time.
    unsafe {
        if libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) != 1
            || libc::mallopt(libc::M_ARENA_MAX, 2) != 1
        {
            log::debug!("could not tune the allocator");
        }
    }
}

/// Gives the pages of freed memory back to the operating system, once a
/// burst is over.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages; it takes the arena
    // locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let mut thread = HasherThread::new();
        let phc = thread.hash(b"correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            thread
                .verify(b"correct horse battery staple", &phc)
                .unwrap()
        );
        assert!(
            !thread
                .verify(b"correct horse battery stapler", &phc)
                .unwrap()
        );
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn two_hashes_of_one_password_have_different_salts() {
        let mut thread = HasherThread::new();
        assert_ne!(
            thread.hash(b"same password").unwrap(),
            thread.hash(b"same password").unwrap()
        );
    }

    #[test]
    fn weaker_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        );
        let mut out = [0u8; 32];
        weak.hash_password_into(b"pw", b"saltsaltsalt", &mut out)
            .unwrap();
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(0x13),
            params: ParamsString::try_from(weak.params()).unwrap(),
            salt: Some(Salt::new(b"saltsaltsalt").unwrap()),
            hash: Some(Output::new(&out).unwrap()),
        }
        .to_string();
        assert!(needs_rehash(&phc));
        assert!(HasherThread::new().verify(b"pw", &phc).unwrap());
    }
}
