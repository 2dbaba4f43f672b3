//! Scraping `/metrics` the way Prometheus does, and reading the samples.
//!
//! The parser is strict on purpose: a line that is not valid in the text
//! exposition format (version 0.0.4), or a sample whose family has no
//! `# TYPE`, fails the scrape, so tests catch output Prometheus would reject.

use std::collections::{BTreeMap, HashMap};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, with any `_total`, `_bucket`, `_sum` or `_count` suffix.
    pub name: String,
    /// Labels by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
    /// `# TYPE` of each family.
    types: HashMap<String, String>,
}

impl Scrape {
    /// GETs `url` as a scraper would (with a `Host` that is not loopback, as
    /// service discovery gives it) and parses the answer; panics if the
    /// answer is not 200 in the Prometheus text format.
    pub async fn fetch(url: &str) -> Self {
        let response = reqwest::Client::new()
            .get(url)
            .header("host", "scrape-target.example:9090")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(response.status(), 200, "GET {url}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "content-type of {url}: {content_type}"
        );
        let text = response.text().await.expect("metrics body");
        Self::parse(&text).unwrap_or_else(|e| panic!("{url}: {e}\n{text}"))
    }

    /// Parses the text exposition format.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut scrape = Self::default();
        for (number, line) in text.lines().enumerate() {
            let at = |e: String| format!("line {}: {e}: {line:?}", number + 1);
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or_else(|| at("bad TYPE".into()))?;
                scrape.types.insert(name.to_owned(), kind.to_owned());
            } else if line.starts_with('#') || line.trim().is_empty() {
                continue;
            } else {
                let sample = parse_sample(line).map_err(at)?;
                if scrape.family_type(&sample.name).is_none() {
                    return Err(at("sample without a # TYPE".into()));
                }
                scrape.samples.push(sample);
            }
        }
        Ok(scrape)
    }

    /// The `# TYPE` of the family a sample name belongs to.
    pub fn family_type(&self, sample_name: &str) -> Option<&str> {
        let family = |suffix: &str| sample_name.strip_suffix(suffix);
        let candidates = [
            Some(sample_name),
            family("_bucket"),
            family("_sum"),
            family("_count"),
        ];
        candidates
            .into_iter()
            .flatten()
            .find_map(|name| self.types.get(name).map(String::as_str))
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// The sum of every sample `name` that has all of `labels` (and maybe more).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| has_labels(s, labels))
            .map(|s| s.value)
            .sum()
    }

    /// Every sample, of every family.
    pub fn all(&self) -> &[Sample] {
        &self.samples
    }

    /// Whether some sample `name` has all of `labels` (and maybe more).
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .any(|s| has_labels(s, labels))
    }

    /// Every sample named `name`.
    pub fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// Whether `sample` has all of `labels` (and maybe more).
fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or_else(|| "no value".to_owned())?;
    let name = &line[..name_end];
    let valid_name = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !valid_name {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or_else(|| "no value".to_owned())?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|e| format!("bad value {v:?}: {e}"))?,
    };
    // An optional timestamp, then nothing.
    if fields.nth(1).is_some() {
        return Err("trailing text".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `name="value",...}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut text: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        if let Some(after) = text.strip_prefix('}') {
            return Ok(after);
        }
        let (key, after) = text
            .split_once("=\"")
            .ok_or_else(|| "bad label".to_owned())?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("bad escape in a label value".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        text = &after[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels, escapes, histogram suffixes and +Inf are read; a sample
    /// without a TYPE or with garbage is refused.
    #[test]
    fn parses_the_text_format() {
        let text = "# HELP a_total Calls.\n# TYPE a_total counter\n\
            a_total{group=\"g\",member=\"m \\\"1\\\"\"} 3\n\
            # TYPE d histogram\nd_bucket{le=\"+Inf\"} 2\nd_count 2\nd_sum 0.5\n";
        let scrape = Scrape::parse(text).unwrap();
        assert_eq!(
            scrape.value("a_total", &[("group", "g"), ("member", "m \"1\"")]),
            Some(3.0)
        );
        assert_eq!(scrape.value("a_total", &[("group", "g")]), None);
        assert_eq!(scrape.sum("a_total", &[("group", "g")]), 3.0);
        assert_eq!(scrape.value("d_bucket", &[("le", "+Inf")]), Some(2.0));
        assert_eq!(scrape.family_type("d_count"), Some("histogram"));
        assert!(Scrape::parse("b 1\n").is_err());
        assert!(Scrape::parse("# TYPE b gauge\nb{x=\"1} 1\n").is_err());
        assert!(Scrape::parse("# TYPE b gauge\nb one\n").is_err());
    }
}
