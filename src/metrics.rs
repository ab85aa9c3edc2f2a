//! Prometheus metrics of this instance (a scraper sums the instances). Counters are bumped where
//! things happen; gauges that the database knows (open alerts, outbox backlog) are read at scrape.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Every recorded event by type and outcome: sign-ins, tokens issued/refused/revoked, key
    /// rotations, …
    pub events: IntCounterVec,
    /// Introspections by token kind and result (`active` or the inactive reason).
    pub introspections: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub open_alerts: IntGauge,
    pub outbox_backlog: IntGauge,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("tokenbroker".into()), None)?;
    let events = IntCounterVec::new(
        Opts::new(
            "events_total",
            "Authentication events recorded, by type and outcome",
        ),
        &["type", "outcome"],
    )?;
    let introspections = IntCounterVec::new(
        Opts::new(
            "introspections_total",
            "Token introspections by token kind and result (active, or why inactive)",
        ),
        &["kind", "result"],
    )?;
    let request_seconds = HistogramVec::new(
        HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]),
        &["method", "route", "status"],
    )?;
    let open_alerts = IntGauge::new("open_alerts", "Alerts open or acknowledged")?;
    let outbox_backlog = IntGauge::new("outbox_backlog", "E-mails waiting to be sent")?;
    registry.register(Box::new(events.clone()))?;
    registry.register(Box::new(introspections.clone()))?;
    registry.register(Box::new(request_seconds.clone()))?;
    registry.register(Box::new(open_alerts.clone()))?;
    registry.register(Box::new(outbox_backlog.clone()))?;
    Ok(Metrics {
        registry,
        events,
        introspections,
        request_seconds,
        open_alerts,
        outbox_backlog,
    })
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| match build() {
    Ok(metrics) => Some(metrics),
    Err(e) => {
        tracing::error!(error = %e, "metrics unavailable");
        None
    }
});

/// The metrics of this process, if they could be set up.
pub fn get() -> Option<&'static Metrics> {
    METRICS.as_ref()
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
