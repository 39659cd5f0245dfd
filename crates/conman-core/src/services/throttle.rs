//! In-process sliding-window throttle for login and password-reset
//! attempts, keyed by account and by client IP. A throttled request is
//! refused with `rate_limited` whatever the password, so the answer never
//! reveals whether an account exists. Each [`Throttle`] is one namespace:
//! login failures and reset requests are counted apart, so asking for
//! resets can never lock anyone out of logging in.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::config::ThrottleConfig;
use crate::domain::Timestamp;
use crate::error::Error;

pub(crate) struct Throttle {
    config: ThrottleConfig,
    failures: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl Throttle {
    pub(crate) fn new(config: ThrottleConfig) -> Self {
        Throttle { config, failures: Mutex::new(HashMap::new()) }
    }

    /// Refuses when `account` or `ip` has used up its failures in the window.
    pub(crate) fn check(&self, account: &str, ip: Option<&str>, now: Timestamp) -> Result<(), Error> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0u64;
        for (key, max) in self.keys(account, ip) {
            if let Some(q) = map.get_mut(&key) {
                self.prune(q, now);
                if q.len() >= max as usize {
                    let oldest = q.front().copied().unwrap_or(now);
                    let window = chrono::Duration::from_std(self.config.window).unwrap_or_default();
                    let secs = (oldest + window - now).num_seconds().max(1) as u64;
                    wait = wait.max(secs);
                }
            }
        }
        if wait > 0 {
            return Err(Error::RateLimited { retry_after_secs: wait });
        }
        Ok(())
    }

    /// Records one failure for `account` and `ip`.
    pub(crate) fn record_failure(&self, account: &str, ip: Option<&str>, now: Timestamp) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, q| q.back().is_some_and(|t| (now - *t).to_std().unwrap_or_default() < self.config.window));
        }
        for (key, _) in self.keys(account, ip) {
            let q = map.entry(key).or_default();
            self.prune(q, now);
            q.push_back(now);
        }
    }

    /// Clears the account's failures after a success (the IP's stay).
    pub(crate) fn record_success(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("account:{account}"));
    }

    fn keys(&self, account: &str, ip: Option<&str>) -> Vec<(String, u32)> {
        let mut keys = vec![(format!("account:{account}"), self.config.per_account)];
        if let Some(ip) = ip {
            keys.push((format!("ip:{ip}"), self.config.per_ip));
        }
        keys
    }

    fn prune(&self, q: &mut VecDeque<Timestamp>, now: Timestamp) {
        while q.front().is_some_and(|t| (now - *t).to_std().unwrap_or_default() >= self.config.window) {
            q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig { per_account: 3, per_ip: 5, window: Duration::from_secs(60) })
    }

    #[test]
    fn account_is_limited_after_its_failures_then_freed_by_time() {
        let t = throttle();
        let now = chrono::Utc::now();
        for _ in 0..3 {
            assert!(t.check("a@x.io", Some("1.1.1.1"), now).is_ok());
            t.record_failure("a@x.io", Some("1.1.1.1"), now);
        }
        assert!(matches!(t.check("a@x.io", Some("2.2.2.2"), now), Err(Error::RateLimited { .. })));
        assert!(t.check("b@x.io", Some("2.2.2.2"), now).is_ok());
        assert!(t.check("a@x.io", None, now + chrono::Duration::seconds(61)).is_ok());
    }

    #[test]
    fn ip_is_limited_across_accounts() {
        let t = throttle();
        let now = chrono::Utc::now();
        for i in 0..5 {
            t.record_failure(&format!("u{i}@x.io"), Some("9.9.9.9"), now);
        }
        assert!(t.check("fresh@x.io", Some("9.9.9.9"), now).is_err());
        assert!(t.check("fresh@x.io", Some("8.8.8.8"), now).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let t = throttle();
        let now = chrono::Utc::now();
        for _ in 0..3 {
            t.record_failure("a@x.io", None, now);
        }
        t.record_success("a@x.io");
        assert!(t.check("a@x.io", None, now).is_ok());
    }
}
