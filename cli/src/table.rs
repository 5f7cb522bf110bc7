//! Text output shared by the commands: column-aligned tables, times and durations as an
//! operator reads them.

use schema::UnixMicros;

/// Column-aligned text, two spaces between columns; the first row is the header. Trailing
/// blanks are trimmed.
pub fn render(rows: &[Vec<String>]) -> String {
    render_with(rows, &[])
}

/// Like [`render`], with the columns listed in `right` (figures) aligned to the right.
pub fn render_with(rows: &[Vec<String>], right: &[usize]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if right.contains(&i) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A header row from names.
pub fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `2026-12-05 09:41:02.123` (UTC, milliseconds).
pub fn clock(us: i64) -> String {
    let t = UnixMicros(us).to_rfc3339();
    // 2026-12-05T09:41:02.123456Z
    format!("{} {}", &t[..10], &t[11..23])
}

/// A lag in microseconds as `+0 ms`, `+350 ms`, `+2.41 s`, `+3m05s`.
pub fn lag(us: i64) -> String {
    let ms = us as f64 / 1000.0;
    if us < 1_000_000 {
        format!("+{ms:.0} ms")
    } else if us < 60_000_000 {
        format!("+{:.2} s", ms / 1000.0)
    } else {
        let s = us / 1_000_000;
        format!("+{}m{:02}s", s / 60, s % 60)
    }
}

/// `-` for nothing.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_trimmed() {
        let text = render(&[
            header(&["NODE", "HEIGHT", "NOTE"]),
            vec!["node0".into(), "7".into(), String::new()],
            vec!["n1".into(), "123456".into(), "x".into()],
        ]);
        assert_eq!(text, "NODE   HEIGHT  NOTE\nnode0  7\nn1     123456  x\n");
    }

    #[test]
    fn times_and_lags_read_naturally() {
        assert_eq!(clock(1_764_927_662_123_456), "2025-12-05 09:41:02.123");
        assert_eq!(lag(0), "+0 ms");
        assert_eq!(lag(350_400), "+350 ms");
        assert_eq!(lag(2_410_000), "+2.41 s");
        assert_eq!(lag(185_000_000), "+3m05s");
    }
}
