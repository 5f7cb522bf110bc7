//! `--since 30m`: a window reaching back from now, as operators type it.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// How far back a command looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Since {
    /// Seconds before now.
    pub secs: u64,
}

impl FromStr for Since {
    type Err = String;

    /// `90s`, `30m`, `12h`, `7d`, or plain seconds.
    fn from_str(s: &str) -> Result<Since, String> {
        let s = s.trim();
        let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => s.split_at(i),
            None => (s, "s"),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{s:?}: expected a number and a unit, like 30m, 12h or 7d"))?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(format!("{s:?}: the unit is one of s, m, h, d")),
        };
        Ok(Since {
            secs: n.saturating_mul(scale),
        })
    }
}

impl Since {
    /// The start of the window, µs since the epoch.
    pub fn start_us(self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        now - (self.secs as i64).saturating_mul(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_mistakes() {
        assert_eq!("90s".parse::<Since>().unwrap().secs, 90);
        assert_eq!("30m".parse::<Since>().unwrap().secs, 1800);
        assert_eq!("12h".parse::<Since>().unwrap().secs, 43_200);
        assert_eq!("7d".parse::<Since>().unwrap().secs, 604_800);
        assert_eq!("45".parse::<Since>().unwrap().secs, 45);
        assert!("5w".parse::<Since>().unwrap_err().contains("unit"));
        assert!("m".parse::<Since>().unwrap_err().contains("number"));
    }
}
