//! Fitting a table's columns into a width without lying: a column is shown
//! whole or not at all, hidden by its declared priority when the table is too
//! narrow; a flexible text column (path, command line) takes what width is
//! left and is shortened in the middle with a visible `…`.

/// What one column needs: its widest text (header included), its priority
/// (higher hides first) and, for a flexible column, its minimum width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Need {
    pub natural: usize,
    pub priority: u8,
    pub flex_min: u16,
}

/// Gap between columns.
pub const SPACING: usize = 1;

/// The width of each column (None: hidden) in `width` cells.
pub fn fit(needs: &[Need], width: usize) -> Vec<Option<usize>> {
    let least = |n: &Need| if n.flex_min > 0 { n.natural.min(n.flex_min as usize) } else { n.natural };
    let mut shown: Vec<bool> = vec![true; needs.len()];
    let used = |shown: &[bool]| {
        let cols: Vec<&Need> = needs.iter().zip(shown).filter(|(_, s)| **s).map(|(n, _)| n).collect();
        cols.iter().map(|n| least(n)).sum::<usize>() + SPACING * cols.len().saturating_sub(1)
    };
    // Hide the highest priority number first; among equals, the rightmost.
    while used(&shown) > width {
        let victim = (0..needs.len()).filter(|&i| shown[i]).max_by_key(|&i| (needs[i].priority, i));
        match victim {
            Some(i) => shown[i] = false,
            None => break,
        }
    }
    let mut widths: Vec<Option<usize>> = needs.iter().zip(&shown).map(|(n, s)| s.then(|| least(n))).collect();
    // What is left goes to the flexible columns, up to their widest text.
    let mut spare = width.saturating_sub(used(&shown));
    for (i, n) in needs.iter().enumerate() {
        if let (Some(w), true) = (widths[i].as_mut(), n.flex_min > 0) {
            let more = n.natural.saturating_sub(*w).min(spare);
            *w += more;
            spare -= more;
        }
    }
    widths
}

/// `text` in at most `width` cells: whole if it fits, else its start and end
/// around a `…` (the end of a path says most).
pub fn elide_middle(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let keep = width - 1;
    let head = keep / 3;
    let tail = keep - head;
    let mut s: String = chars[..head].iter().collect();
    s.push('…');
    s.extend(&chars[chars.len() - tail..]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(natural: usize, priority: u8, flex_min: u16) -> Need {
        Need { natural, priority, flex_min }
    }

    #[test]
    fn columns_hide_by_priority_then_from_the_right_and_flex_takes_the_rest() {
        // pid (key), comm, path (flex 10), flags (extra), time
        let cols = [need(7, 0, 0), need(15, 1, 0), need(60, 1, 10), need(12, 2, 0), need(8, 1, 0)];
        // Everything at its natural width in 120 cells.
        assert_eq!(fit(&cols, 120), vec![Some(7), Some(15), Some(60), Some(12), Some(8)]);
        // 80: path shrinks, nothing hidden: 7+15+8+12+4 spaces = 46, path 34.
        assert_eq!(fit(&cols, 80), vec![Some(7), Some(15), Some(34), Some(12), Some(8)]);
        // 50: flags (extra) goes first; path gets the rest.
        assert_eq!(fit(&cols, 50), vec![Some(7), Some(15), Some(17), None, Some(8)]);
        // 40: then the rightmost of priority 1 (time).
        assert_eq!(fit(&cols, 40), vec![Some(7), Some(15), Some(16), None, None]);
        // 20: only what says what the row is.
        assert_eq!(fit(&cols, 20), vec![Some(7), None, None, None, None]);
        assert_eq!(fit(&cols, 5), vec![None; 5], "nothing fits: nothing shown, nothing cut");
    }

    #[test]
    fn elision_keeps_both_ends_and_marks_the_cut() {
        assert_eq!(elide_middle("/etc/passwd", 20), "/etc/passwd");
        assert_eq!(elide_middle("/usr/lib/x86_64-linux-gnu/libc.so.6", 16), "/usr/…/libc.so.6");
        assert_eq!(elide_middle("abcdef", 1), "…");
        assert_eq!(elide_middle("ab", 0), "");
    }
}
