//! Text layout engines that etcdctl's output goes through: Go's
//! `text/tabwriter` (used by the help and usage screens, configured as
//! etcdctl does: min width 0, tab width 8, padding 1, tabs as padding) and
//! olekukonko/tablewriter (the `-w table` output: boxed, header centred and
//! upper-cased, cells right-aligned, cells wider than 30 columns word-wrapped).
//!
//! Both are written from the behaviour of those libraries, for exactly the
//! configurations etcdctl uses; they know nothing of commands or etcd.
//! Display width counts East Asian wide characters as two columns, a close
//! approximation of go-runewidth.

use std::collections::BTreeMap;

/// Formats `text` like a Go `tabwriter.Writer` created with
/// `Init(w, 0, 8, 1, '\t', 0)` and flushed at the end.
pub fn tabwrite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let pieces: Vec<&str> = text.split('\n').collect();
    let mut block: Vec<Vec<&str>> = Vec::new();
    let count = pieces.len();
    for (index, piece) in pieces.into_iter().enumerate() {
        let cells: Vec<&str> = piece.split('\t').collect();
        let cell_count = cells.len();
        block.push(cells);
        let is_last = index + 1 == count;
        if is_last {
            flush_block(&block, &mut out, true);
        } else if cell_count == 1 {
            // A line of a single cell cannot influence later columns: Go's
            // tabwriter flushes here, which ends every column block.
            flush_block(&block, &mut out, false);
            block.clear();
        }
    }
    out
}

fn flush_block(lines: &[Vec<&str>], out: &mut String, last_is_partial: bool) {
    let mut widths = Vec::new();
    format_columns(lines, &mut widths, 0, lines.len(), out, last_is_partial);
}

fn format_columns(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    line0: usize,
    line1: usize,
    out: &mut String,
    last_is_partial: bool,
) {
    let column = widths.len();
    let mut line0 = line0;
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A cell exists in this column: print the lines before the block,
        // then find the block's extent and width.
        write_lines(lines, widths, line0, this, out, last_is_partial);
        line0 = this;
        let mut width = 0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(display_width(lines[this][column]) + 1);
            this += 1;
        }
        widths.push(width);
        format_columns(lines, widths, line0, this, out, last_is_partial);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, widths, line0, line1, out, last_is_partial);
}

fn write_lines(
    lines: &[Vec<&str>],
    widths: &[usize],
    line0: usize,
    line1: usize,
    out: &mut String,
    last_is_partial: bool,
) {
    const TAB_WIDTH: usize = 8;
    for (index, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                let cell_width = widths[j].div_ceil(TAB_WIDTH) * TAB_WIDTH;
                let padding = cell_width.saturating_sub(display_width(cell));
                for _ in 0..padding.div_ceil(TAB_WIDTH) {
                    out.push('\t');
                }
            }
        }
        if !(last_is_partial && index + 1 == lines.len()) {
            out.push('\n');
        }
    }
}

/// Terminal columns taken by `s` (wide East Asian characters count two).
pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let u = c as u32;
    let wide = matches!(u,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff
        | 0x20000..=0x3fffd);
    if wide { 2 } else { 1 }
}

/// The widest a cell may be before tablewriter wraps it.
const TABLE_CELL_WIDTH_MAX: usize = 30;

/// A table rendered like etcdctl's `tablewriter` use: header row, then rows
/// aligned right.
pub struct Table {
    header: Vec<Vec<String>>,
    rows: Vec<Vec<Vec<String>>>,
    column_widths: BTreeMap<usize, usize>,
    header_height: usize,
    row_heights: Vec<usize>,
}

impl Table {
    /// Starts a table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        let mut table = Table {
            header: Vec::new(),
            rows: Vec::new(),
            column_widths: BTreeMap::new(),
            header_height: 0,
            row_heights: Vec::new(),
        };
        for (column, title) in header.iter().enumerate() {
            let lines = table.measure(title, column);
            table.header_height = table.header_height.max(lines.len());
            table.header.push(lines);
        }
        table
    }

    /// Appends one row of cells.
    pub fn append(&mut self, row: &[String]) {
        let mut cells = Vec::with_capacity(row.len());
        let mut height = 0;
        for (column, cell) in row.iter().enumerate() {
            let lines = self.measure(cell, column);
            height = height.max(lines.len());
            cells.push(lines);
        }
        self.rows.push(cells);
        self.row_heights.push(height);
    }

    /// Splits a cell into its display lines (word-wrapped when too wide)
    /// and widens its column to fit.
    fn measure(&mut self, text: &str, column: usize) -> Vec<String> {
        let raw: Vec<&str> = text.split('\n').collect();
        let mut max_width = raw.iter().map(|l| display_width(l)).max().unwrap_or(0);
        max_width = max_width.min(TABLE_CELL_WIDTH_MAX);
        let paragraph = raw.join(" ");
        let lines = wrap_string(&paragraph, max_width);
        for line in &lines {
            max_width = max_width.max(display_width(line));
        }
        let entry = self.column_widths.entry(column).or_insert(0);
        if *entry < max_width {
            *entry = max_width;
        }
        lines
    }

    /// Renders the table, borders and all.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let widths: Vec<usize> = self.column_widths.values().copied().collect();
        let separator = {
            let mut line = String::from("+");
            for width in &widths {
                line.push_str(&"-".repeat(width + 2));
                line.push('+');
            }
            line.push('\n');
            line
        };
        out.push_str(&separator);
        if !self.header.is_empty() {
            for x in 0..self.header_height {
                out.push('|');
                for (y, width) in widths.iter().enumerate() {
                    let text = self
                        .header
                        .get(y)
                        .and_then(|lines| lines.get(x))
                        .map(String::as_str)
                        .unwrap_or("");
                    out.push(' ');
                    out.push_str(&pad_center(&title_case(text), *width));
                    out.push_str(" |");
                }
                out.push('\n');
            }
            out.push_str(&separator);
        }
        for (row, height) in self.rows.iter().zip(&self.row_heights) {
            for x in 0..*height {
                for (y, cell) in row.iter().enumerate() {
                    let text = cell.get(x).map(String::as_str).unwrap_or("  ");
                    let width = self.column_widths.get(&y).copied().unwrap_or(0);
                    out.push_str("| ");
                    out.push_str(&pad_left(text, width));
                    out.push(' ');
                }
                out.push_str("|\n");
            }
        }
        out.push_str(&separator);
        out
    }
}

/// tablewriter's `Title`: `_` and non-numeric `.` become spaces, trimmed,
/// upper-cased.
fn title_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let is_num_or_space = |c: char| c.is_ascii_digit() || c == ' ';
    let mut replaced = String::with_capacity(name.len());
    for (i, &c) in chars.iter().enumerate() {
        let mapped = match c {
            '_' => ' ',
            '.' if (i != 0 && !is_num_or_space(chars[i - 1]))
                || (i + 1 != chars.len() && !is_num_or_space(chars[i + 1])) =>
            {
                ' '
            }
            c => c,
        };
        replaced.push(mapped);
    }
    let trimmed = replaced.trim();
    if trimmed.is_empty() && !name.is_empty() {
        return " ".to_string();
    }
    trimmed.to_uppercase()
}

fn pad_center(s: &str, width: usize) -> String {
    let gap = width.saturating_sub(display_width(s));
    let left = gap / 2;
    format!("{}{}{}", " ".repeat(left), s, " ".repeat(gap - left))
}

fn pad_left(s: &str, width: usize) -> String {
    let gap = width.saturating_sub(display_width(s));
    format!("{}{}", " ".repeat(gap), s)
}

/// tablewriter's `WrapString`: splits on spaces and breaks lines to
/// minimise raggedness (squared slack), never splitting a word.
fn wrap_string(s: &str, limit: usize) -> Vec<String> {
    let words: Vec<&str> = s.split(' ').collect();
    let mut limit = limit;
    for word in &words {
        limit = limit.max(display_width(word));
    }
    wrap_words(&words, limit)
        .into_iter()
        .map(|line| line.join(" "))
        .collect()
}

fn wrap_words<'a>(words: &[&'a str], limit: usize) -> Vec<Vec<&'a str>> {
    const PENALTY: i64 = 100_000;
    let n = words.len();
    let limit = limit as i64;
    // length[i][j]: width of words i..=j joined by single spaces.
    let mut length = vec![vec![0i64; n]; n];
    for i in 0..n {
        length[i][i] = display_width(words[i]) as i64;
        for j in i + 1..n {
            length[i][j] = length[i][j - 1] + 1 + display_width(words[j]) as i64;
        }
    }
    let mut next_break = vec![0usize; n];
    let mut cost = vec![i64::from(i32::MAX); n];
    for i in (0..n).rev() {
        if length[i][n - 1] <= limit {
            cost[i] = 0;
            next_break[i] = n;
        } else {
            for j in i + 1..n {
                let slack = limit - length[i][j - 1];
                let mut c = slack * slack + cost[j];
                if length[i][j - 1] > limit {
                    c += PENALTY;
                }
                if c < cost[i] {
                    cost[i] = c;
                    next_break[i] = j;
                }
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        let end = next_break[i].max(i + 1);
        lines.push(words[i..end].to_vec());
        i = end;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_pads_with_tabs_to_multiples_of_eight() {
        let text = "OPTIONS:\n  -h, --help[=false]\thelp for get\n      --print-value-only[=false]\tOnly\n\nEND\n";
        let want = "OPTIONS:\n  -h, --help[=false]\t\t\thelp for get\n      --print-value-only[=false]\tOnly\n\nEND\n";
        assert_eq!(tabwrite(text), want);
    }

    #[test]
    fn tabwriter_blocks_end_at_single_cell_lines() {
        let text = "\tname - short\n\nA:\n\tx\ty\n\tlonger-name\tz\n";
        let want = "\tname - short\n\nA:\n\tx\t\ty\n\tlonger-name\tz\n";
        assert_eq!(tabwrite(text), want);
    }

    #[test]
    fn table_matches_tablewriter_layout() {
        let mut table = Table::new(&["endpoint", "health", "took", "error"]);
        table.append(&[
            "127.0.0.1:23791".to_string(),
            "true".to_string(),
            "1.466313ms".to_string(),
            String::new(),
        ]);
        let want = "\
+-----------------+--------+------------+-------+
|    ENDPOINT     | HEALTH |    TOOK    | ERROR |
+-----------------+--------+------------+-------+
| 127.0.0.1:23791 |   true | 1.466313ms |       |
+-----------------+--------+------------+-------+
";
        assert_eq!(table.render(), want);
    }

    #[test]
    fn table_wraps_long_cells_on_spaces() {
        let mut table = Table::new(&["a"]);
        table.append(&["alpha beta gamma delta epsilon zeta eta".to_string()]);
        let rendered = table.render();
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines[3], "| alpha beta gamma delta epsilon |");
        assert_eq!(lines[4], format!("| {:>30} |", "zeta eta"));
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn title_replaces_underscores_and_uppercases() {
        assert_eq!(title_case("raft applied index"), "RAFT APPLIED INDEX");
        assert_eq!(title_case("db_size"), "DB SIZE");
        assert_eq!(title_case("v1.0"), "V1.0");
    }
}
