//! The processes tests start (servers of every kind): they die with the
//! test that started them, and listen on a port nobody else holds.
//! Shared with the browser suite (`#[path]`).

use std::net::TcpListener;

/// A free TCP port on the loopback address (the OS picks it; a rare race
/// with another process taking it is caught by the server failing to bind).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process a test starts dies with the thread that started it (the
/// test's), whatever happens to the test: a failed assertion between its
/// start and its kill must not leave a server running, holding the
/// suite's output open and keeping whatever reads it waiting.
pub trait DiesWithTheTest {
    fn dies_with_the_test(&mut self) -> &mut Self;
}

impl DiesWithTheTest for std::process::Command {
    fn dies_with_the_test(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the closure only calls prctl,
        // which is async-signal-safe, and allocates nothing.
        unsafe {
            self.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}
