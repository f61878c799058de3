//! A real SMTP server for the tests: Python's aiosmtpd (Debian's
//! `python3-aiosmtpd`, which `scripts/test` installs), run as a child
//! process on a free port of 127.0.0.1 and keeping every message it
//! accepts in a Maildir of its own. A test gives the app the server's
//! `smtp://` URL, makes the app send mail, then reads that mail the way a
//! user would: headers (RFC 2047 encoded words decoded), the plain-text
//! and HTML parts (quoted-printable and base64 undone), and the links in
//! the text.
//!
//! The server process is started with `PR_SET_PDEATHSIG`, so it dies with
//! the thread that started it: start and restart it from the test's own
//! thread (the body of a `#[tokio::test]` is), not from a short-lived one
//! such as `spawn_blocking`'s.

use crate::processes::{DiesWithTheTest, free_port};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a start or a restart may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `stop` waits for the process to end after SIGTERM before it
/// kills it outright.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the waiting functions look again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// An aiosmtpd process on a port of its own, and the Maildir where it
/// puts what it receives. Dropping it stops the process and removes the
/// directory.
pub struct SmtpServer {
    /// The Python interpreter that has aiosmtpd.
    python: &'static Path,
    /// The port on 127.0.0.1; kept across restarts.
    port: u16,
    /// Holds the Maildir and the process's output (stdout and stderr).
    dir: tempfile::TempDir,
    /// The running process, if any.
    child: Option<Child>,
    /// Where the current run's output starts in the log file: the file
    /// keeps the output of every run.
    log_offset: u64,
}

/// What became of a freshly spawned server.
enum Outcome {
    /// It answers with an SMTP greeting.
    Serving,
    /// It exited because its port was taken.
    PortBusy,
    /// It exited, or did not answer in time, for this reason.
    Failed(String),
}

/// What to do when the port turns out to be taken.
#[derive(Clone, Copy)]
enum WhenBusy {
    /// Try another free port (a first start: any port will do).
    TakeAnother,
    /// Wait and try the same port again (a restart: the app knows it).
    Retry,
}

impl SmtpServer {
    /// Starts aiosmtpd on a free port, writing every message it accepts to
    /// a Maildir in a temporary directory, and returns once it greets SMTP
    /// clients. Panics with the process's output if it does not within
    /// 10 seconds, and if no Python has aiosmtpd.
    pub fn start() -> SmtpServer {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-smtp-")
            .tempdir()
            .expect("a temporary directory for the SMTP server");
        let mut server = SmtpServer {
            python: python(),
            port: free_port(),
            dir,
            child: None,
            log_offset: 0,
        };
        server.run(WhenBusy::TakeAnother);
        server
    }

    /// `smtp://127.0.0.1:PORT`: the `SMTP_URL` to give the app.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the process: SIGTERM, then SIGKILL if it is still running
    /// after 5 seconds. Once this returns, the port refuses connections.
    /// Does nothing if the server is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("a process id that fits in pid_t");
        // SAFETY: kill only sends a signal; the process is our child and
        // has not been reaped, so the pid is still its own.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL_INTERVAL / 2),
                _ => break,
            }
        }
        // It ignored SIGTERM (or waiting failed): kill it for good. Errors
        // here mean it has already gone.
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port and with the same Maildir,
    /// so the app's `SMTP_URL` still points at it and the messages
    /// delivered before are still listed. Stops it first if it is running.
    /// Retries for up to 10 seconds while the port is briefly taken.
    pub fn restart(&mut self) {
        self.stop();
        self.run(WhenBusy::Retry);
    }

    /// Every message delivered so far (including before restarts), oldest
    /// first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files = Vec::new();
        // Delivery writes a message under `tmp/` and then moves it to
        // `new/`, so what is listed there is complete. No one moves them on
        // to `cur/`, but a message there is delivered all the same.
        for folder in ["new", "cur"] {
            let folder = self.maildir().join(folder);
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                // aiosmtpd creates the Maildir when it starts.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("cannot list {}: {e}", folder.display()),
            };
            for entry in entries {
                let entry = entry.expect("an entry of the Maildir");
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                let modified = entry
                    .metadata()
                    .and_then(|metadata| metadata.modified())
                    .expect("the modification time of a delivered message");
                files.push((modified, name, entry.path()));
            }
        }
        // By delivery time, then by name: Maildir names start with the
        // delivery time too.
        files.sort();
        files
            .into_iter()
            .map(|(_, _, path)| {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                Mail::parse(&String::from_utf8_lossy(&bytes))
            })
            .collect()
    }

    /// The messages delivered so far whose `To` header contains `to`
    /// (ignoring case), oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<Mail> {
        let to = to.to_lowercase();
        self.messages()
            .into_iter()
            .filter(|mail| mail.to().to_lowercase().contains(&to))
            .collect()
    }

    /// Waits up to `timeout` for a message whose `To` header contains `to`
    /// (ignoring case) and returns the oldest such message. Panics, listing
    /// the recipients of what was delivered, if none arrives in time.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> Mail {
        self.wait_for_count(to, 1, timeout)
            .await
            .into_iter()
            .next()
            .expect("at least one message")
    }

    /// Waits up to `timeout` until at least `count` messages whose `To`
    /// header contains `to` (ignoring case) have arrived, and returns all
    /// of them, oldest first. Panics, listing the recipients of what was
    /// delivered, if they do not arrive in time.
    pub async fn wait_for_count(&self, to: &str, count: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.messages_to(to);
            if found.len() >= count {
                return found;
            }
            if Instant::now() >= deadline {
                let recipients: Vec<String> = self.messages().iter().map(Mail::to).collect();
                panic!(
                    "{} message(s) to {to} expected within {timeout:?}, {} arrived; \
                     the SMTP server ({}) received mail to {recipients:?}\n\
                     --- its output ---\n{}",
                    count,
                    found.len(),
                    self.url(),
                    self.output(),
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Where aiosmtpd's Mailbox handler keeps the messages.
    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// The file that receives the process's stdout and stderr.
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("aiosmtpd.log")
    }

    /// What the current run of the process has written so far.
    fn output(&self) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let start = usize::try_from(self.log_offset)
            .unwrap_or(usize::MAX)
            .min(log.len());
        String::from_utf8_lossy(&log[start..]).into_owned()
    }

    /// The command that runs the server, for messages.
    fn command_line(&self) -> String {
        let mut line = self.python.display().to_string();
        for argument in self.arguments() {
            line.push(' ');
            line.push_str(&argument);
        }
        line
    }

    /// aiosmtpd's arguments: `-n` not to switch to the user `nobody` (as
    /// root it would, and then could not write the Maildir), the address to
    /// listen on, and the handler class followed by its one argument, the
    /// Maildir (created if missing).
    fn arguments(&self) -> Vec<String> {
        vec![
            "-m".to_owned(),
            "aiosmtpd".to_owned(),
            "-n".to_owned(),
            "-l".to_owned(),
            format!("127.0.0.1:{}", self.port),
            "-c".to_owned(),
            "aiosmtpd.handlers.Mailbox".to_owned(),
            self.maildir()
                .to_str()
                .expect("a temporary directory with a UTF-8 path")
                .to_owned(),
        ]
    }

    /// Spawns the process and waits until it serves, trying again while
    /// its port is taken; panics if it fails for another reason or takes
    /// longer than `START_TIMEOUT`.
    fn run(&mut self, when_busy: WhenBusy) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.spawn();
            let reason = match self.wait_until_serving(deadline) {
                Outcome::Serving => return,
                Outcome::PortBusy if Instant::now() < deadline => {
                    match when_busy {
                        WhenBusy::TakeAnother => self.port = free_port(),
                        WhenBusy::Retry => std::thread::sleep(POLL_INTERVAL * 2),
                    }
                    continue;
                }
                Outcome::PortBusy => {
                    format!("port {} was still taken after {START_TIMEOUT:?}", self.port)
                }
                Outcome::Failed(reason) => reason,
            };
            panic!(
                "the SMTP server did not start: {reason}\n\
                 command: {}\n--- its output ---\n{}",
                self.command_line(),
                self.output(),
            );
        }
    }

    /// Starts the process, its output appended to the log file.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the SMTP server's log file");
        self.log_offset = log.metadata().expect("the log file's size").len();
        let stdout = log.try_clone().expect("a second handle on the log file");
        let child = Command::new(self.python)
            .args(self.arguments())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .dies_with_the_test()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.command_line()));
        self.child = Some(child);
    }

    /// Waits until the process greets SMTP clients on its port, exits, or
    /// `deadline` passes (then it is stopped).
    fn wait_until_serving(&mut self, deadline: Instant) -> Outcome {
        loop {
            let child = self.child.as_mut().expect("a server process");
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return if self
                        .output()
                        .to_lowercase()
                        .contains("address already in use")
                    {
                        Outcome::PortBusy
                    } else {
                        Outcome::Failed(format!("aiosmtpd exited ({status})"))
                    };
                }
                Ok(None) => {}
                Err(e) => panic!("cannot check on the SMTP server process: {e}"),
            }
            if greets(self.port) {
                return Outcome::Serving;
            }
            if Instant::now() >= deadline {
                self.stop();
                return Outcome::Failed(format!("no SMTP greeting within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether something on `port` answers a connection with an SMTP
/// greeting (a `220` reply).
fn greets(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("220")
}

/// The first Python that can import aiosmtpd: Debian's, then whichever
/// `python3` is on the PATH (which may be a pyenv shim without it).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|candidate| {
                Command::new(candidate)
                    .args(["-c", "import aiosmtpd"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .dies_with_the_test()
                    .status()
                    .is_ok_and(|status| status.success())
            })
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "aiosmtpd is missing (scripts/test installs python3-aiosmtpd): \
                     neither /usr/bin/python3 nor python3 can import it"
                )
            })
    })
}

/// A message as delivered, read back: its headers and its plain-text and
/// HTML bodies, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The message as stored (aiosmtpd stores it with LF line endings and
    /// adds `X-Peer`, `X-MailFrom` and `X-RcptTo` headers).
    pub raw: String,
    /// The top-level headers in order, names as written, values unfolded
    /// but not decoded.
    pub headers: Vec<(String, String)>,
    /// The first `text/plain` part (or the body of a message that is not
    /// MIME), decoded, with LF line endings and no trailing line break;
    /// empty if there is none.
    pub text: String,
    /// The first `text/html` part, decoded, with LF line endings and no
    /// trailing line break.
    pub html: Option<String>,
}

impl Mail {
    /// Reads a message: headers, then the MIME tree for its first
    /// `text/plain` and `text/html` parts that are not attachments.
    /// Accepts CRLF and LF line endings.
    pub fn parse(raw: &str) -> Mail {
        let normalized = raw.replace("\r\n", "\n");
        let (headers, _) = split_entity(&normalized);
        let mut text = None;
        let mut html = None;
        collect_bodies(&normalized, &mut text, &mut html);
        Mail {
            raw: raw.to_owned(),
            headers,
            text: text.unwrap_or_default(),
            html,
        }
    }

    /// The first header called `name` (ignoring case), unfolded, as
    /// written (encoded words left as they are).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The `Subject` header with its RFC 2047 encoded words decoded; empty
    /// if there is none.
    pub fn subject(&self) -> String {
        decode_words(self.header("Subject").unwrap_or_default())
    }

    /// The `To` header with its RFC 2047 encoded words decoded; empty if
    /// there is none.
    pub fn to(&self) -> String {
        decode_words(self.header("To").unwrap_or_default())
    }

    /// The first URL in the plain text that starts with `prefix` (such as
    /// `http://host/reset-password?token=`), whole: up to the next
    /// whitespace, `<`, `>` or `"` (none of which a URL contains), or the
    /// end of the text.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let start = self.text.find(prefix)?;
        let after = start + prefix.len();
        let end = self.text[after..]
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .map_or(self.text.len(), |offset| after + offset);
        Some(self.text[start..end].to_owned())
    }
}

/// The first header called `name` (ignoring case) in `headers`.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Splits a message or a MIME part (LF line endings) into its unfolded
/// headers and its body.
fn split_entity(entity: &str) -> (Vec<(String, String)>, &str) {
    let (block, body) = if let Some(body) = entity.strip_prefix('\n') {
        ("", body)
    } else {
        entity.split_once("\n\n").unwrap_or((entity, ""))
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            // A folded line: unfolding removes the line break only.
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.trim().to_owned();
    }
    (headers, body)
}

/// A `Content-Type`-like header value split into its lowercased value and
/// its parameters (names lowercased, values unquoted).
fn parse_parameters(value: &str) -> (String, Vec<(String, String)>) {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            segments.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    segments.push(current);
    let mut segments = segments.into_iter();
    let main = segments.next().unwrap_or_default().trim().to_lowercase();
    let parameters = segments
        .filter_map(|segment| {
            let (name, value) = segment.split_once('=')?;
            Some((name.trim().to_lowercase(), value.trim().to_owned()))
        })
        .collect();
    (main, parameters)
}

/// The parameter called `name` (lowercase) among `parameters`.
fn parameter<'a>(parameters: &'a [(String, String)], name: &str) -> Option<&'a str> {
    parameters
        .iter()
        .find(|(candidate, _)| candidate == name)
        .map(|(_, value)| value.as_str())
}

/// Walks a message or part (LF line endings) depth first, keeping the
/// first `text/plain` and `text/html` bodies that are not attachments.
fn collect_bodies(entity: &str, text: &mut Option<String>, html: &mut Option<String>) {
    let (headers, body) = split_entity(entity);
    let (content_type, parameters) =
        parse_parameters(header(&headers, "Content-Type").unwrap_or("text/plain"));
    if content_type.starts_with("multipart/") {
        if let Some(boundary) = parameter(&parameters, "boundary") {
            for part in split_multipart(body, boundary) {
                collect_bodies(&part, text, html);
            }
        }
        return;
    }
    let (disposition, _) = parse_parameters(header(&headers, "Content-Disposition").unwrap_or(""));
    if disposition == "attachment" {
        return;
    }
    let slot = match content_type.as_str() {
        "text/plain" => text,
        "text/html" => html,
        _ => return,
    };
    if slot.is_none() {
        let encoding = header(&headers, "Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_lowercase();
        let bytes = match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => decode_base64(body),
            _ => body.as_bytes().to_vec(),
        };
        let charset = parameter(&parameters, "charset").unwrap_or("us-ascii");
        let decoded = decode_charset(&bytes, charset).replace("\r\n", "\n");
        // Trailing line breaks vary with the sender and the transport (the
        // one that ends the DATA may be kept): none are kept.
        *slot = Some(decoded.trim_end_matches('\n').to_owned());
    }
}

/// The parts of a multipart body (LF line endings) between its `--boundary`
/// lines, up to the closing `--boundary--`; the line break before each
/// boundary line belongs to the boundary.
fn split_multipart(body: &str, boundary: &str) -> Vec<String> {
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let line_trimmed = line.trim_end();
        if line_trimmed == open || line_trimmed == close {
            if let Some(lines) = current.take() {
                parts.push(lines.join("\n"));
            }
            if line_trimmed == close {
                return parts;
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    // No closing boundary: keep what the last part had.
    if let Some(lines) = current {
        parts.push(lines.join("\n"));
    }
    parts
}

/// Undoes quoted-printable (LF line endings): `=XX` escapes and soft line
/// breaks (a line ending in `=`), and drops the trailing whitespace that
/// transport may have added to lines.
fn decode_quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let lines: Vec<&str> = body.split('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        let (line, soft_break) = match line.strip_suffix('=') {
            Some(line) => (line, true),
            None => (line, false),
        };
        unescape_hex(line.as_bytes(), &mut out);
        if !soft_break && index + 1 < lines.len() {
            out.push(b'\n');
        }
    }
    out
}

/// Appends `input` to `out` with its `=XX` escapes replaced by the bytes
/// they stand for; an `=` not followed by two hex digits is kept as is.
fn unescape_hex(input: &[u8], out: &mut Vec<u8>) {
    let mut index = 0;
    while index < input.len() {
        if input[index] == b'='
            && let (Some(high), Some(low)) = (
                input.get(index + 1).copied().and_then(hex_digit),
                input.get(index + 2).copied().and_then(hex_digit),
            )
        {
            out.push(high << 4 | low);
            index += 3;
            continue;
        }
        out.push(input[index]);
        index += 1;
    }
}

/// The value of one hex digit (either case).
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes base64 leniently: skips line breaks and anything else outside
/// the alphabet, stops at the padding, and tolerates missing padding.
fn decode_base64(input: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut accumulator: u32 = 0;
    let mut bits = 0;
    for byte in input.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        accumulator = accumulator << 6 | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((accumulator >> bits) & 0xff) as u8);
            accumulator &= (1 << bits) - 1;
        }
    }
    out
}

/// Turns bytes in `charset` into text: Latin-1 byte for byte, anything
/// else as UTF-8 (which covers US-ASCII), invalid sequences replaced.
fn decode_charset(bytes: &[u8], charset: &str) -> String {
    match charset.to_lowercase().as_str() {
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" => {
            bytes.iter().copied().map(char::from).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes the RFC 2047 encoded words (`=?charset?Q?…?=` and
/// `=?charset?B?…?=`) in a header value; whitespace between two encoded
/// words is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        if let Some((decoded, length)) = encoded_word(candidate) {
            if !(after_word && before.chars().all(char::is_whitespace)) {
                out.push_str(before);
            }
            out.push_str(&decoded);
            rest = &candidate[length..];
            after_word = true;
        } else {
            out.push_str(before);
            out.push_str("=?");
            rest = &candidate[2..];
            after_word = false;
        }
    }
    out.push_str(rest);
    out
}

/// The encoded word at the start of `input`, decoded, and its length; none
/// if `input` does not start with a well-formed one.
fn encoded_word(input: &str) -> Option<(String, usize)> {
    let inner = input.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let encoded = &inner[..end];
    if charset.is_empty()
        || [charset, encoding, encoded]
            .iter()
            .any(|piece| piece.contains(char::is_whitespace))
    {
        return None;
    }
    let bytes = match encoding {
        "Q" | "q" => {
            let spaced = encoded.replace('_', " ");
            let mut bytes = Vec::with_capacity(spaced.len());
            unescape_hex(spaced.as_bytes(), &mut bytes);
            bytes
        }
        "B" | "b" => decode_base64(encoded),
        _ => return None,
    };
    // `charset*language` (RFC 2231): the language does not matter here.
    let charset = charset.split('*').next().unwrap_or(charset);
    let length = "=?".len() + charset.len() + 1 + encoding.len() + 1 + end + "?=".len();
    Some((decode_charset(&bytes, charset), length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Write};

    const WAIT: Duration = Duration::from_secs(10);

    /// A message the way lettre builds one: multipart/alternative, the
    /// text quoted-printable (with a soft line break inside the link), the
    /// HTML base64, the subject in two encoded words on folded lines.
    const ALTERNATIVE: &str = "From: Latchkey <noreply@example.com>\r\n\
        To: alice@example.com\r\n\
        Subject: =?utf-8?q?R=C3=A9initialisez?=\r\n =?utf-8?b?IHZvdHJlIG1vdCBkZSBwYXNzZQ==?=\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative;\r\n boundary=\"LbNd-42\"\r\n\
        \r\n\
        --LbNd-42\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        Bonjour Al=C3=AFce,\r\n\
        \r\n\
        Reset: http://127.0.0.1:8080/reset-password?token=3Dabcdefghijklmnopqrstuvw=\r\n\
        xyz0123456789\r\n\
        .Thanks\r\n\
        --LbNd-42\r\n\
        Content-Type: text/html; charset=utf-8\r\n\
        Content-Transfer-Encoding: base64\r\n\
        \r\n\
        PHA+Qm9uam91ciBBbMOvY2UsPC9wPg0KPHA+PGEgaHJlZj0iaHR0cDovLzEyNy4wLjAuMTo4MDgw\r\n\
        L3Jlc2V0LXBhc3N3b3JkP3Rva2VuPWFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDEyMzQ1Njc4\r\n\
        OSI+Q2hvb3NlIGEgbmV3IHBhc3N3b3JkPC9hPjwvcD4NCg==\r\n\
        --LbNd-42--\r\n";

    const RESET_LINK: &str =
        "http://127.0.0.1:8080/reset-password?token=abcdefghijklmnopqrstuvwxyz0123456789";

    /// Reads one SMTP reply (all its lines) and checks its code.
    fn expect_reply(reader: &mut impl BufRead, code: &str) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read = reader.read_line(&mut line).expect("an SMTP reply");
            assert!(read > 0, "the SMTP server hung up; so far: {reply}");
            reply.push_str(&line);
            // `250-…` continues a reply, `250 …` ends it.
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        assert!(reply.starts_with(code), "expected {code}, got {reply}");
        reply
    }

    /// Sends one command and checks the reply's code.
    fn command(stream: &mut TcpStream, reader: &mut impl BufRead, line: &str, code: &str) {
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("an SMTP command sent");
        expect_reply(reader, code);
    }

    /// Delivers `message` to the server on `port` as an SMTP client would.
    fn send(port: u16, from: &str, to: &str, message: &str) {
        let mut stream =
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("an SMTP connection");
        stream.set_read_timeout(Some(WAIT)).expect("a read timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("a second handle on the stream"));
        expect_reply(&mut reader, "220");
        command(&mut stream, &mut reader, "EHLO client.example", "250");
        command(
            &mut stream,
            &mut reader,
            &format!("MAIL FROM:<{from}>"),
            "250",
        );
        command(&mut stream, &mut reader, &format!("RCPT TO:<{to}>"), "250");
        command(&mut stream, &mut reader, "DATA", "354");
        let mut data = String::new();
        for line in message.lines() {
            // Dot-stuffing: a line starting with `.` gets another one.
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        stream.write_all(data.as_bytes()).expect("the message sent");
        expect_reply(&mut reader, "250");
        command(&mut stream, &mut reader, "QUIT", "221");
    }

    #[tokio::test]
    async fn a_delivered_message_is_read_back_decoded() {
        let smtp = SmtpServer::start();
        assert_eq!(smtp.url(), format!("smtp://127.0.0.1:{}", smtp.port()));
        send(
            smtp.port(),
            "noreply@example.com",
            "alice@example.com",
            ALTERNATIVE,
        );

        let mail = smtp.wait_for("ALICE@example.com", WAIT).await;
        assert_eq!(mail.subject(), "Réinitialisez votre mot de passe");
        assert_eq!(mail.to(), "alice@example.com");
        assert_eq!(mail.header("x-rcptto"), Some("alice@example.com"));
        assert!(
            mail.raw.contains("X-MailFrom: noreply@example.com"),
            "{}",
            mail.raw
        );
        assert!(
            mail.headers.iter().any(|(name, _)| name == "MIME-Version"),
            "{:?}",
            mail.headers
        );
        assert_eq!(
            mail.text,
            format!("Bonjour Alïce,\n\nReset: {RESET_LINK}\n.Thanks")
        );
        assert_eq!(
            mail.html.as_deref(),
            Some(format!("<p>Bonjour Alïce,</p>\n<p><a href=\"{RESET_LINK}\">Choose a new password</a></p>").as_str())
        );
        assert_eq!(
            mail.link("http://127.0.0.1:8080/reset-password?token=")
                .as_deref(),
            Some(RESET_LINK)
        );
        assert_eq!(mail.link("http://127.0.0.1:8080/verify-email?token="), None);
        assert!(smtp.messages_to("bob@example.com").is_empty());
    }

    #[tokio::test]
    async fn mail_survives_a_restart_on_the_same_port() {
        let mut smtp = SmtpServer::start();
        let port = smtp.port();
        let url = smtp.url();
        send(
            port,
            "noreply@example.com",
            "alice@example.com",
            ALTERNATIVE,
        );
        smtp.wait_for("alice@example.com", WAIT).await;

        smtp.stop();
        let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .expect_err("no server on the port once stopped");
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        smtp.stop();

        smtp.restart();
        assert_eq!(smtp.url(), url);
        let plain = "From: noreply@example.com\r\n\
            To: Bob <bob@example.com>\r\n\
            Subject: Verify your email\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: 7bit\r\n\
            \r\n\
            Open http://127.0.0.1:8080/verify-email?token=t0k3n to verify.\r\n";
        send(port, "noreply@example.com", "bob@example.com", plain);
        let mail = smtp.wait_for("bob@example.com", WAIT).await;
        assert_eq!(mail.subject(), "Verify your email");
        assert_eq!(mail.html, None);
        assert_eq!(
            mail.link("http://127.0.0.1:8080/verify-email?token=")
                .as_deref(),
            Some("http://127.0.0.1:8080/verify-email?token=t0k3n")
        );

        let recipients: Vec<String> = smtp.messages().iter().map(Mail::to).collect();
        assert_eq!(recipients, ["alice@example.com", "Bob <bob@example.com>"]);

        // A restart of a running server works too.
        smtp.restart();
        send(
            port,
            "noreply@example.com",
            "alice@example.com",
            ALTERNATIVE,
        );
        let both = smtp.wait_for_count("alice@example.com", 2, WAIT).await;
        assert_eq!(both.len(), 2);
        assert_eq!(smtp.messages().len(), 3);
    }

    #[tokio::test]
    #[should_panic(expected = "received mail to [\"alice@example.com\"]")]
    async fn waiting_for_mail_that_never_comes_fails_with_the_recipients() {
        let smtp = SmtpServer::start();
        send(
            smtp.port(),
            "noreply@example.com",
            "alice@example.com",
            ALTERNATIVE,
        );
        smtp.wait_for("carol@example.com", Duration::from_millis(500))
            .await;
    }

    #[test]
    fn a_single_part_message_is_decoded() {
        // CRLF line endings, a Latin-1 base64 body, a Q-encoded subject.
        let mail = Mail::parse(
            "to: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n\
             SUBJECT: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n\
             Content-Type: text/plain;\r\n\tcharset=\"ISO-8859-1\"\r\n\
             Content-Transfer-Encoding: BASE64\r\n\
             \r\n\
             R3L832UgYXVzIEv2bG4NCmh0dHA6Ly94L3k/ej0xDQo=\r\n",
        );
        assert_eq!(mail.to(), "Jürgen <j@example.com>");
        assert_eq!(mail.subject(), "Grüße aus Köln");
        assert_eq!(
            mail.header("content-type"),
            Some("text/plain;\tcharset=\"ISO-8859-1\"")
        );
        assert_eq!(mail.text, "Grüße aus Köln\nhttp://x/y?z=1");
        assert_eq!(mail.link("http://x/").as_deref(), Some("http://x/y?z=1"));
        assert_eq!(mail.header("Cc"), None);
    }

    #[test]
    fn links_end_where_a_url_cannot_go_on() {
        let mail = Mail::parse(
            "Subject: plain =?bogus =?utf-8?x?a?= text\n\nSee <https://a.example/p?q=1>, \"https://b.example/\"",
        );
        assert_eq!(mail.subject(), "plain =?bogus =?utf-8?x?a?= text");
        assert_eq!(
            mail.link("https://a.").as_deref(),
            Some("https://a.example/p?q=1")
        );
        assert_eq!(
            mail.link("https://b.").as_deref(),
            Some("https://b.example/")
        );
    }
}
