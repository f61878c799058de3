//! A real nginx (Debian's; `scripts/test` installs it), started by a test
//! with a configuration of its own on a free port, and stopped with it.

use crate::helpers::DiesWithTheTest;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

/// Starts nginx in the foreground with `http(dir, port)` inside its
/// `http {}` block (the rest, temporary paths included, is filled in
/// here), and waits until it listens on `port`.
pub fn start(http: impl FnOnce(&Path, u16) -> String) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::postgres::free_port();
    let root = if crate::postgres::running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let d = dir.path().display();
    let config = format!(
        "{root}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{}
}}
",
        http(dir.path(), port)
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(binary())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .dies_with_the_test()
        .spawn()
        .expect("nginx starts (apt-get install nginx)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let log = ["stderr.log", "error.log"]
                .map(|name| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default())
                .join("");
            panic!("nginx did not listen ({exited:?}): {log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        address: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so that nginx's master stops its workers with it.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
