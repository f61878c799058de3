//! The counters and gauges `/metrics` serves as Prometheus text, through
//! the `prometheus` crate. Requests are counted by route *pattern*
//! (`/api/user/{id}`, or `unmatched`), never by raw path, so ids never
//! become label values (the middleware that times them is in
//! `crate::middleware`, the page in `routes::service`).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    logins: IntCounterVec,
    refreshes: IntCounterVec,
    active_sessions: IntGauge,
    key_age: IntGauge,
    pool_in_use: IntGauge,
    hasher_queue: IntGauge,
    mail_outbox: IntGauge,
    mail_sent: IntCounterVec,
}

fn must<T>(result: prometheus::Result<T>) -> T {
    // The names and labels below are constants; registering them can only
    // fail for a programming error caught by the first test.
    result.expect("metric definitions are valid")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(metric.clone())));
            metric
        };
        let gauge = |name: &str, help: &str| {
            let metric = must(IntGauge::new(name, help));
            must(registry.register(Box::new(metric.clone())));
            metric
        };
        let http_requests = counter(
            "latchkey_http_requests_total",
            "HTTP requests answered, by route pattern, method and status",
            &["route", "method", "status"],
        );
        let logins = counter(
            "latchkey_logins_total",
            "Sign-ins, by outcome (ok, failed, throttled)",
            &["outcome"],
        );
        let refreshes = counter(
            "latchkey_refreshes_total",
            "Refreshes, by outcome (ok, failed, reuse)",
            &["outcome"],
        );
        for outcome in ["ok", "failed", "throttled"] {
            logins.with_label_values(&[outcome]);
        }
        for outcome in ["ok", "failed", "reuse"] {
            refreshes.with_label_values(&[outcome]);
        }
        let mail_sent = counter(
            "latchkey_mail_sent_total",
            "Mail delivery attempts, by outcome (sent; failed: tried again later; expired: \
             dropped unsent once its link no longer works; unsendable: refused for good by \
             the SMTP server)",
            &["outcome"],
        );
        for outcome in ["sent", "failed", "expired", "unsendable"] {
            mail_sent.with_label_values(&[outcome]);
        }
        let http_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "latchkey_http_request_duration_seconds",
                "Time to answer, by route pattern",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        ));
        must(registry.register(Box::new(http_duration.clone())));
        Self {
            http_requests,
            http_duration,
            logins,
            refreshes,
            active_sessions: gauge("latchkey_active_sessions", "Sessions that are live now"),
            key_age: gauge(
                "latchkey_signing_key_age_seconds",
                "Age of the active signing key",
            ),
            pool_in_use: gauge(
                "latchkey_db_connections_in_use",
                "Store connections checked out of the pool",
            ),
            hasher_queue: gauge(
                "latchkey_hasher_queue_depth",
                "Password hashing jobs waiting for a hasher thread",
            ),
            mail_outbox: gauge(
                "latchkey_mail_outbox",
                "Mail waiting in the outbox to be sent",
            ),
            mail_sent,
            registry,
        }
    }

    /// One delivery attempt's outcome: `sent`, `failed`, `expired` or
    /// `unsendable`.
    pub fn mail(&self, outcome: &str) {
        self.mail_sent.with_label_values(&[outcome]).inc();
    }

    pub fn login(&self, outcome: &str) {
        self.logins.with_label_values(&[outcome]).inc();
    }

    pub fn refresh(&self, outcome: &str) {
        self.refreshes.with_label_values(&[outcome]).inc();
    }

    /// Counts and times one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(seconds);
    }
}

/// What the gauges read at the moment `/metrics` is asked for.
pub struct Gauges {
    pub active_sessions: i64,
    pub key_age_seconds: i64,
    pub pool_in_use: i64,
    pub hasher_queue: i64,
    pub mail_outbox: i64,
}

impl Metrics {
    /// Sets the gauges, then renders everything as Prometheus text.
    pub fn render(&self, gauges: Gauges) -> prometheus::Result<Vec<u8>> {
        self.active_sessions.set(gauges.active_sessions);
        self.key_age.set(gauges.key_age_seconds);
        self.pool_in_use.set(gauges.pool_in_use);
        self.hasher_queue.set(gauges.hasher_queue);
        self.mail_outbox.set(gauges.mail_outbox);
        let mut body = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut body)?;
        Ok(body)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
