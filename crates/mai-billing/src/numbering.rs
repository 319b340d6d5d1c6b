//! Invoice number templates (pure). The sequence itself lives in the store, which hands
//! out numbers gap-free per seller and year in the same transaction that saves the invoice.

/// A parsed template such as `FV/{yyyy}/{mm}/{seq:04}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFormat {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Year4,
    Year2,
    Month2,
    Seq { width: usize },
}

impl NumberFormat {
    /// Placeholders: `{yyyy}`, `{yy}`, `{mm}` (of the issue date), `{seq}` / `{seq:0N}`.
    /// `{seq}` must appear exactly once: the number must be unique within a year.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        let mut seqs = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{template}`: `{{` without a closing `}}`"))?
                + open;
            let name = &rest[open + 1..close];
            parts.push(match name {
                "yyyy" => Part::Year4,
                "yy" => Part::Year2,
                "mm" => Part::Month2,
                "seq" => {
                    seqs += 1;
                    Part::Seq { width: 1 }
                }
                s if s.starts_with("seq:") => {
                    seqs += 1;
                    let w = &s[4..];
                    let width: usize = w
                        .trim_start_matches('0')
                        .parse()
                        .ok()
                        .filter(|w| (1..=10).contains(w))
                        .ok_or_else(|| {
                            format!("`{template}`: `{{{s}}}` needs a width such as {{seq:04}}")
                        })?;
                    Part::Seq { width }
                }
                other => {
                    return Err(format!(
                        "`{template}`: unknown placeholder `{{{other}}}`; use {{yyyy}}, {{yy}}, {{mm}}, {{seq:04}}"
                    ))
                }
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if seqs != 1 {
            return Err(format!(
                "`{template}` must contain {{seq}} (or {{seq:04}}) exactly once"
            ));
        }
        if parts
            .iter()
            .any(|p| matches!(p, Part::Text(t) if t.contains('}')))
        {
            return Err(format!("`{template}`: `}}` without an opening `{{`"));
        }
        Ok(Self { parts })
    }

    pub fn render(&self, year: i32, month: u32, seq: u32) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Year4 => out.push_str(&format!("{year:04}")),
                Part::Year2 => out.push_str(&format!("{:02}", year.rem_euclid(100))),
                Part::Month2 => out.push_str(&format!("{month:02}")),
                Part::Seq { width } => out.push_str(&format!("{seq:0width$}")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_default_format() {
        let f = NumberFormat::parse("FV/{yyyy}/{mm}/{seq:04}").unwrap();
        assert_eq!(f.render(2026, 11, 7), "FV/2026/11/0007");
        assert_eq!(f.render(2027, 1, 12345), "FV/2027/01/12345");
        let g = NumberFormat::parse("{seq}/{yy}").unwrap();
        assert_eq!(g.render(2026, 3, 5), "5/26");
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(NumberFormat::parse("FV/{yyyy}").is_err());
        assert!(NumberFormat::parse("{seq}/{seq}").is_err());
        assert!(NumberFormat::parse("FV/{year}/{seq}").is_err());
        assert!(NumberFormat::parse("FV/{seq").is_err());
        assert!(NumberFormat::parse("FV}/{seq}").is_err());
        assert!(NumberFormat::parse("FV/{seq:x}").is_err());
    }
}
