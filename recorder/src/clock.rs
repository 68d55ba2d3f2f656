//! Clocks and the recording timeline.
//!
//! Every sample stores CLOCK_REALTIME (`wall`), CLOCK_BOOTTIME (`mono`) and a
//! `key` on the recording timeline, which is what seek uses. The key starts
//! at the wall clock, then advances by elapsed CLOCK_BOOTTIME, so a backward
//! step of the wall clock (NTP, an operator) never reorders samples; a
//! forward step of more than a second is followed. Keys strictly increase
//! across recorder restarts and reboots.

const SEC: i64 = 1_000_000_000;

pub fn now(clock: libc::clockid_t) -> i64 {
    // SAFETY: valid out-pointer.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i64 * SEC + ts.tv_nsec as i64
}

pub fn wall_ns() -> i64 {
    now(libc::CLOCK_REALTIME)
}

pub fn boottime_ns() -> i64 {
    now(libc::CLOCK_BOOTTIME)
}

/// Maps (wall, mono) readings to strictly increasing keys.
#[derive(Debug, Default)]
pub struct Timeline {
    last: Option<(i64, i64)>, // (key, mono)
    floor: i64,
}

impl Timeline {
    /// `ring_last_key`: the newest key already in the ring, if any.
    pub fn new(ring_last_key: Option<i64>) -> Timeline {
        Timeline {
            last: None,
            floor: ring_last_key.unwrap_or(i64::MIN),
        }
    }

    pub fn key(&mut self, wall: i64, mono: i64) -> i64 {
        let key = match self.last {
            None => wall.max(self.floor.saturating_add(1)),
            Some((k, m)) => {
                let adv = k + (mono - m).max(1);
                if wall > adv + SEC {
                    wall
                } else {
                    adv
                }
            }
        };
        self.last = Some((key, mono));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn backward_step_keeps_order_forward_step_followed() {
        let mut t = Timeline::new(None);
        let base = 1_700_000_000 * SEC;
        assert_eq!(t.key(base, 10 * SEC), base);
        assert_eq!(t.key(base + SEC, 11 * SEC), base + SEC);
        // wall stepped back an hour: key keeps advancing by mono
        assert_eq!(t.key(base + 2 * SEC - 3600 * SEC, 12 * SEC), base + 2 * SEC);
        assert_eq!(t.key(base + 3 * SEC - 3600 * SEC, 13 * SEC), base + 3 * SEC);
        // wall stepped forward a day: followed
        assert_eq!(t.key(base + 86400 * SEC, 14 * SEC), base + 86400 * SEC);
    }
    #[test]
    fn restart_after_reboot_stays_after_ring() {
        let mut t = Timeline::new(Some(5000));
        assert_eq!(
            t.key(100, 1),
            5001,
            "wall behind the ring's last key: key continues after it"
        );
        assert!(t.key(100, 2) > 5001);
    }
}
