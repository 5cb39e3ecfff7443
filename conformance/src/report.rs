//! Plain-text tables for the reports.

/// Columns of text, left-aligned first column, right-aligned numbers.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |r: &Vec<String>| {
            let mut s = String::new();
            for (i, w) in width.iter().enumerate() {
                let c = r.get(i).map_or("", |c| c.as_str());
                // Numbers (and only numbers) are right-aligned.
                let numeric = i > 0
                    && c.chars().next().is_some_and(|ch| ch.is_ascii_digit())
                    && c.chars()
                        .all(|ch| ch.is_ascii_digit() || ".,%s ".contains(ch));
                if numeric {
                    s.push_str(&format!("{c:>w$}  "));
                } else {
                    s.push_str(&format!("{c:<w$}  "));
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        out.push_str(&line(&width.iter().map(|w| "-".repeat(*w)).collect()));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}
