//! Template placeholders (CONTRACT "Templates and writing"): `{firstName}` and the other names
//! below, `{name|fallback}` with a default. A brace that does not open a name is text
//! (`{ }`, `{"json": 1}`); a name we do not know is an error naming it, so a typo never reaches
//! a partner as `{frstName}`.

use std::collections::BTreeMap;

pub const NAMES: [&str; 12] = [
    "firstName",
    "lastName",
    "fullName",
    "position",
    "domain",
    "accountName",
    "targetBlogPost",
    "ourContent",
    "keyword",
    "competitorDomain",
    "senderName",
    "workspaceName",
];

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Slot { name: &'a str, fallback: Option<&'a str> },
}

/// Why a template cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    Unknown(String),
}

/// Splits a template into text and placeholders.
pub fn parse(t: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = t;
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(i) = rest.find('{') {
        let at = pos + i;
        let after = &t[at + 1..];
        let name_len = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').count();
        let close = after.find('}');
        let opens_name = name_len > 0 && after.as_bytes()[0].is_ascii_alphabetic();
        match close {
            Some(c)
                if opens_name && (c == name_len || after.as_bytes()[name_len] == b'|') && !after[..c].contains('{') =>
            {
                let name = &after[..name_len];
                if !NAMES.contains(&name) {
                    return Err(TemplateError::Unknown(name.to_owned()));
                }
                let fallback = (c > name_len).then(|| &after[name_len + 1..c]);
                if at > text_start {
                    out.push(Piece::Text(&t[text_start..at]));
                }
                out.push(Piece::Slot { name, fallback });
                text_start = at + 1 + c + 1;
                pos = text_start;
                rest = &t[pos..];
            }
            _ => {
                pos = at + 1;
                rest = &t[pos..];
            }
        }
    }
    if text_start < t.len() {
        out.push(Piece::Text(&t[text_start..]));
    }
    Ok(out)
}

/// The placeholder names a template uses, in order of first use.
pub fn used(t: &str) -> Result<Vec<String>, TemplateError> {
    let mut names: Vec<String> = Vec::new();
    for p in parse(t)? {
        if let Piece::Slot { name, .. } = p {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// The values a template is rendered with: only non-blank values count.
#[derive(Clone, Debug, Default)]
pub struct Values(pub BTreeMap<&'static str, String>);

impl Values {
    pub fn set(&mut self, name: &'static str, v: Option<impl Into<String>>) {
        if let Some(v) = v.map(Into::into).filter(|v: &String| !v.trim().is_empty()) {
            self.0.insert(name, v);
        }
    }
}

/// Renders `t`; the names without a value and without a fallback are returned instead (none of
/// them is ever sent as the literal placeholder).
pub fn render(t: &str, values: &Values) -> Result<Result<String, Vec<String>>, TemplateError> {
    let mut out = String::with_capacity(t.len());
    let mut missing: Vec<String> = Vec::new();
    for p in parse(t)? {
        match p {
            Piece::Text(s) => out.push_str(s),
            Piece::Slot { name, fallback } => match (values.0.get(name), fallback) {
                (Some(v), _) => out.push_str(v),
                (None, Some(f)) => out.push_str(f),
                (None, None) => {
                    if !missing.iter().any(|m| m == name) {
                        missing.push(name.to_owned());
                    }
                }
            },
        }
    }
    Ok(if missing.is_empty() { Ok(out) } else { Err(missing) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals() -> Values {
        let mut v = Values::default();
        v.set("firstName", Some("Marina"));
        v.set("domain", Some("engineering-blog.com"));
        v.set("position", Some("  "));
        v
    }

    #[test]
    fn renders_values_and_fallbacks() {
        let t = "Hi {firstName}, loved {domain}. As {position|an editor} you {keyword|may} like it.";
        assert_eq!(
            render(t, &vals()).unwrap().unwrap(),
            "Hi Marina, loved engineering-blog.com. As an editor you may like it."
        );
        assert_eq!(used(t).unwrap(), vec!["firstName", "domain", "position", "keyword"]);
    }

    #[test]
    fn missing_values_are_named_and_unknown_names_refused() {
        assert_eq!(render("Hi {lastName} {lastName}", &vals()).unwrap(), Err(vec!["lastName".to_owned()]));
        assert_eq!(render("Hi {frstName}", &vals()), Err(TemplateError::Unknown("frstName".into())));
    }

    #[test]
    fn braces_that_open_no_name_are_text() {
        let t = "json {\"a\": 1} and { firstName } and {} and {1x} and {firstName";
        assert_eq!(render(t, &vals()).unwrap().unwrap(), t);
        assert_eq!(render("{{firstName}}", &vals()).unwrap().unwrap(), "{Marina}");
        assert_eq!(render("{firstName|}", &Values::default()).unwrap().unwrap(), "");
    }

    proptest::proptest! {
        #[test]
        fn text_without_braces_renders_to_itself(s in "[^{}]{0,200}") {
            proptest::prop_assert_eq!(render(&s, &Values::default()).unwrap().unwrap(), s);
        }

        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = render(&s, &vals());
        }
    }
}
