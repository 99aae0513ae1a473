//! Limits against abuse: rate limits per client address and per token (the `governor`
//! crate's GCRA, keyed), header-read and idle timeouts (hyper), and a cap on open connections
//! (an acceptor that refuses connections beyond it).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Default `--rate-limit`: requests per second per client address (and per token); far above
/// what a phone or an integrator's server verifying taps sends.
pub const DEFAULT_RATE_LIMIT: u32 = 100;

/// Server limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests per second per client address and per token; 0 = no rate limit.
    pub rate: u32,
    /// Requests allowed at once above the rate (default: twice the rate).
    pub burst: u32,
    /// Time allowed for a request's header (and for the first request of a connection).
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this long.
    pub idle_timeout: Duration,
    /// Most connections open at once; more are closed on accept.
    pub max_connections: usize,
}

impl Default for Limits {
    /// Timeouts and the connection cap on; no rate limit (the CLI turns it on).
    fn default() -> Limits {
        Limits {
            rate: 0,
            burst: 0,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

impl Limits {
    /// With a rate limit of `rate` per second (burst twice that); 0 turns it off.
    pub fn with_rate(rate: u32) -> Limits {
        Limits {
            rate,
            burst: rate.saturating_mul(2),
            ..Limits::default()
        }
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// The rate-limit headers' values.
#[derive(Debug, Clone)]
pub struct RateInfo {
    /// `X-Rate-Limit-Limit`: the window the limit applies to (`1s`), as seed 004 has it.
    pub limit: String,
    /// `X-Rate-Limit-Remaining`.
    pub remaining: u32,
    /// `X-Rate-Limit-Reset`: when the next request is allowed (UTC).
    pub reset: String,
}

/// Keyed rate limiters: one per client address, one per token.
pub struct RateLimits {
    per_ip: Keyed<IpAddr>,
    per_token: Keyed<String>,
    clock: DefaultClock,
    rate: u32,
    checks: AtomicUsize,
}

impl RateLimits {
    /// `None` when `limits.rate` is 0.
    pub fn new(limits: &Limits) -> Option<RateLimits> {
        let rate = std::num::NonZeroU32::new(limits.rate)?;
        let burst = std::num::NonZeroU32::new(limits.burst.max(limits.rate))?;
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(RateLimits {
            per_ip: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            per_token: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
            rate: limits.rate,
            checks: AtomicUsize::new(0),
        })
    }

    /// Checks one request: `Ok` with the headers' values, or `Err` when over the limit.
    pub fn check(&self, ip: IpAddr, token: Option<&str>) -> Result<RateInfo, RateInfo> {
        // Forget idle clients now and then (bounded memory under address-spraying).
        if self.checks.fetch_add(1, Ordering::Relaxed) % 65_536 == 65_535 {
            self.per_ip.retain_recent();
            self.per_token.retain_recent();
        }
        let ip_outcome = self.per_ip.check_key(&ip);
        let outcome = match (ip_outcome, token) {
            (Ok(s), Some(t)) => match self.per_token.check_key(&t.to_string()) {
                Ok(s2) => Ok(s
                    .remaining_burst_capacity()
                    .min(s2.remaining_burst_capacity())),
                Err(n) => Err(n.wait_time_from(self.clock.now())),
            },
            (Ok(s), None) => Ok(s.remaining_burst_capacity()),
            (Err(n), _) => Err(n.wait_time_from(self.clock.now())),
        };
        let per = Duration::from_secs(1) / self.rate.max(1);
        let info = |remaining: u32, wait: Duration| RateInfo {
            limit: "1s".into(),
            remaining,
            reset: utc_after(wait),
        };
        match outcome {
            Ok(remaining) => Ok(info(
                remaining,
                if remaining > 0 { Duration::ZERO } else { per },
            )),
            Err(wait) => Err(info(0, wait)),
        }
    }
}

fn utc_after(d: Duration) -> String {
    let t = SystemTime::now() + d;
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    super::timefmt::utc(ms)
}

/// Open connections, counted by [`ConnGuard`]s.
#[derive(Debug, Default)]
pub struct ConnCount(AtomicUsize);

/// Held by each open connection.
pub struct ConnGuard(Arc<ConnCount>);

impl ConnCount {
    /// A guard if fewer than `max` connections are open.
    pub fn enter(self: &Arc<Self>, max: usize) -> Option<ConnGuard> {
        let n = self.0.fetch_add(1, Ordering::AcqRel);
        if n >= max {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnGuard(self.clone()))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_limit_is_refused_with_a_reset_time() {
        let r = RateLimits::new(&Limits {
            rate: 2,
            burst: 3,
            ..Limits::default()
        })
        .unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(r.check(ip, None).is_ok());
        }
        let e = r.check(ip, None).unwrap_err();
        assert_eq!((e.limit.as_str(), e.remaining), ("1s", 0));
        assert!(e.reset.ends_with('Z'));
        // Another client is not affected; a token is limited across addresses.
        assert!(r.check("10.0.0.2".parse().unwrap(), Some("t")).is_ok());
        assert!(RateLimits::new(&Limits::default()).is_none());
        let c = Arc::new(ConnCount::default());
        let g = c.enter(1).unwrap();
        assert!(c.enter(1).is_none());
        drop(g);
        assert!(c.enter(1).is_some());
    }
}
