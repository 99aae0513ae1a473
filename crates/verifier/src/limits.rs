//! Limits against abuse: rate limits per client address and per token (the `governor`
//! crate's GCRA, keyed, in tables of bounded size), header-read and idle timeouts (hyper), a
//! bound on a request's head (request line and headers), and caps on open connections, in
//! all and per client address (an acceptor that refuses connections beyond them).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Default `--rate-limit`: requests per second per client address (and per token); far above
/// what a phone or an integrator's server verifying taps sends.
pub const DEFAULT_RATE_LIMIT: u32 = 100;

/// Default `--connections-per-address`: connections one client address (an IPv6 /64) may hold
/// open at once. A phone opens a handful; an integrator's server pools a few dozen.
pub const DEFAULT_CONNECTIONS_PER_ADDRESS: usize = 64;

/// Most bytes of a request's head (request line and headers together) the server reads;
/// beyond it the HTTP layer refuses the request before any route runs, answered HTTP 200
/// `malformed_parameter` and the connection closed (`headrefusal`).
/// 16 KiB: four times the longest query `/v1/t` accepts ([`super::query::MAX_QUERY_LEN`]),
/// and far above what a phone's browser sends.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most client keys (addresses, or tokens) a rate-limit table holds before it forgets the
/// idle ones; the table is checked every [`TABLE_CHECK_EVERY`] requests, so it never holds
/// more than the sum of the two.
pub const MAX_RATE_KEYS: usize = 65_536;
/// How often (in requests) the rate-limit tables' size is checked.
pub const TABLE_CHECK_EVERY: usize = 1024;

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
    /// Most connections one client address (an IPv6 /64) holds open at once; more are closed
    /// on accept. 0 = no per-address cap (behind a proxy, where every client has its address).
    pub per_address: usize,
    /// Most bytes of a request's head (request line and headers); hyper's buffer bound, at
    /// least 8 KiB (hyper's minimum).
    pub max_head_bytes: usize,
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
            per_address: DEFAULT_CONNECTIONS_PER_ADDRESS,
            max_head_bytes: MAX_HEAD_BYTES,
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

/// The key of a client address in the per-address tables: an IPv4 address as it is (also
/// when IPv4-mapped), an IPv6 address by its /64 prefix (one subscriber's network: a client
/// with an IPv6 prefix has 2^64 addresses to spread over).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A keyed limiter whose table holds at most [`MAX_RATE_KEYS`] + [`TABLE_CHECK_EVERY`] keys:
/// every [`TABLE_CHECK_EVERY`] checks, an oversized table forgets its idle keys, and if the
/// keys still active are too many, it starts afresh (every client then gets a fresh burst:
/// the lesser harm than unbounded memory).
struct BoundedTable<K: std::hash::Hash + Eq + Clone> {
    table: RwLock<Keyed<K>>,
    quota: Quota,
    checks: AtomicUsize,
}

impl<K: std::hash::Hash + Eq + Clone> BoundedTable<K> {
    fn new(quota: Quota) -> Self {
        BoundedTable {
            table: RwLock::new(Self::fresh(quota)),
            quota,
            checks: AtomicUsize::new(0),
        }
    }

    fn fresh(quota: Quota) -> Keyed<K> {
        RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
    }

    fn check(
        &self,
        key: &K,
    ) -> Result<
        governor::middleware::StateSnapshot,
        governor::NotUntil<governor::clock::QuantaInstant>,
    > {
        if self.checks.fetch_add(1, Ordering::Relaxed) % TABLE_CHECK_EVERY == TABLE_CHECK_EVERY - 1
        {
            self.bound();
        }
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        t.check_key(key)
    }

    fn bound(&self) {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        if t.len() < MAX_RATE_KEYS {
            return;
        }
        t.retain_recent();
        if t.len() >= MAX_RATE_KEYS {
            *t = Self::fresh(self.quota);
        } else {
            t.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.table.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Keyed rate limiters: one per client address (see [`client_key`]), one per token.
pub struct RateLimits {
    per_ip: BoundedTable<IpAddr>,
    per_token: BoundedTable<String>,
    clock: DefaultClock,
    rate: u32,
}

impl RateLimits {
    /// `None` when `limits.rate` is 0.
    pub fn new(limits: &Limits) -> Option<RateLimits> {
        let rate = std::num::NonZeroU32::new(limits.rate)?;
        let burst = std::num::NonZeroU32::new(limits.burst.max(limits.rate))?;
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(RateLimits {
            per_ip: BoundedTable::new(quota),
            per_token: BoundedTable::new(quota),
            clock: DefaultClock::default(),
            rate: limits.rate,
        })
    }

    /// Checks one request: `Ok` with the headers' values, or `Err` when over the limit.
    /// `token` is counted only when it has a token's form (alphanumeric, at most
    /// [`super::query::MAX_TOKEN_LEN`] characters): anything else is refused by the decision
    /// anyway and never enters the table. (The API passes only tokens some folder, or the
    /// management API, has: see `api::rate_check`.)
    pub fn check(&self, ip: IpAddr, token: Option<&str>) -> Result<RateInfo, RateInfo> {
        let token = token.filter(|t| super::query::valid_token(t));
        let ip_outcome = self.per_ip.check(&client_key(ip));
        let outcome = match (ip_outcome, token) {
            (Ok(s), Some(t)) => match self.per_token.check(&t.to_string()) {
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

    /// Keys held now: (client addresses, tokens).
    pub fn table_sizes(&self) -> (usize, usize) {
        (self.per_ip.len(), self.per_token.len())
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

/// Open connections, in all and per client address (see [`client_key`]), counted by
/// [`ConnGuard`]s. The per-address table holds only addresses with an open connection, so it
/// never has more entries than the connection cap.
#[derive(Debug, Default)]
pub struct ConnCount {
    total: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// Held by each open connection.
pub struct ConnGuard {
    count: Arc<ConnCount>,
    key: Option<IpAddr>,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnRefused {
    /// The server holds its most connections.
    Total,
    /// This client address holds its most connections.
    PerAddress,
}

impl ConnCount {
    /// A guard if fewer than `max` connections are open, and (when `per_address` > 0) fewer
    /// than `per_address` from `ip`'s client key.
    pub fn enter(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        max: usize,
        per_address: usize,
    ) -> Result<ConnGuard, ConnRefused> {
        let key = ip.filter(|_| per_address > 0).map(client_key);
        if let Some(k) = key {
            let mut m = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(k).or_insert(0);
            if *n >= per_address {
                return Err(ConnRefused::PerAddress);
            }
            *n += 1;
        }
        // From here the guard undoes what was counted, also when the total cap refuses.
        let guard = ConnGuard {
            count: self.clone(),
            key,
        };
        let n = self.total.fetch_add(1, Ordering::AcqRel);
        if n >= max {
            return Err(ConnRefused::Total);
        }
        Ok(guard)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Client addresses with a connection open now.
    pub fn addresses(&self) -> usize {
        self.per_address
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.count.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(k) = self.key {
            let mut m = self
                .count
                .per_address
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&k);
                }
            }
        }
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
        let g = c.enter(None, 1, 0).unwrap();
        assert!(c.enter(None, 1, 0).is_err());
        drop(g);
        assert!(c.enter(None, 1, 0).is_ok());
        assert_eq!(c.open(), 0);
    }

    #[test]
    fn one_address_gets_its_share_of_connections_and_no_more() {
        let c = Arc::new(ConnCount::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| c.enter(Some(a), 10, 3).unwrap()).collect();
        assert_eq!(c.enter(Some(a), 10, 3).err(), Some(ConnRefused::PerAddress));
        let other = c.enter(Some(b), 10, 3).unwrap();
        assert_eq!((c.open(), c.addresses()), (4, 2));
        // IPv6: one /64 is one client.
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let g1 = c.enter(v6("2001:db8::1"), 10, 1).unwrap();
        assert!(c.enter(v6("2001:db8::ffff:2"), 10, 1).is_err());
        let g2 = c.enter(v6("2001:db8:0:1::1"), 10, 1).unwrap();
        // The total cap also frees the per-address slot it refused.
        assert_eq!(c.enter(Some(b), 6, 3).err(), Some(ConnRefused::Total));
        drop((held, other, g1, g2));
        assert_eq!((c.open(), c.addresses()), (0, 0));
        assert_eq!(client_key("::ffff:10.0.0.1".parse().unwrap()), a);
    }

    #[test]
    fn the_rate_tables_stay_bounded_and_refuse_what_is_not_a_token() {
        let r = RateLimits::new(&Limits::with_rate(1000)).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        // A 400 kB "token" and a 33-character one are not counted (nothing stored).
        let big = "A".repeat(400_000);
        assert!(r.check(ip, Some(&big)).is_ok());
        assert!(r.check(ip, Some(&"B".repeat(33))).is_ok());
        assert_eq!(r.table_sizes(), (1, 0));
        // Address spraying: the table never grows past its bound.
        let n = MAX_RATE_KEYS + 3 * TABLE_CHECK_EVERY;
        for i in 0..n as u32 {
            let _ = r.check(
                IpAddr::V4(std::net::Ipv4Addr::from(i)),
                Some(&format!("T{i}")),
            );
            let (ips, tokens) = r.table_sizes();
            assert!(
                ips <= MAX_RATE_KEYS + TABLE_CHECK_EVERY,
                "{ips} addresses held"
            );
            assert!(
                tokens <= MAX_RATE_KEYS + TABLE_CHECK_EVERY,
                "{tokens} tokens held"
            );
        }
    }
}
