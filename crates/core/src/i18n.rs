//! What Steward writes to subjects, in Chinese (`zh-CN`) and English (`en`) (P26, P30): one
//! Project Fluent catalogue per language, embedded in the binary (`crates/core/messages/`).
//! A message exists in both languages with the same attributes, or a test fails. Does not
//! choose a subject's language: the caller passes it.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use crate::error::Error;

/// The catalogues, by language tag, as embedded.
const SOURCES: [(&str, &str); 2] = [
    ("zh-CN", include_str!("../messages/zh-CN.ftl")),
    ("en", include_str!("../messages/en.ftl")),
];

/// Every language's messages, parsed once.
pub struct Catalogue {
    bundles: HashMap<&'static str, FluentBundle<FluentResource>>,
}

impl Catalogue {
    /// Parses the embedded catalogues. A catalogue that does not parse is a build defect,
    /// caught by the tests; it is reported, not panicked on.
    pub fn new() -> Result<Catalogue, Error> {
        Catalogue::from_sources(&SOURCES)
    }

    /// A catalogue of other messages (the web pages'), one Fluent source per language tag.
    pub fn from_sources(sources: &[(&'static str, &'static str)]) -> Result<Catalogue, Error> {
        let mut bundles = HashMap::new();
        for (tag, source) in sources {
            let resource = FluentResource::try_new(source.to_string())
                .map_err(|_| Error::Internal("a message catalogue does not parse"))?;
            let lang: unic_langid::LanguageIdentifier = tag
                .parse()
                .map_err(|_| Error::Internal("a message catalogue's language tag is invalid"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![lang]);
            // Plain text (email) and escaped HTML alike: no Unicode isolation marks around
            // arguments.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|_| Error::Internal("a message catalogue defines a message twice"))?;
            bundles.insert(*tag, bundle);
        }
        Ok(Catalogue { bundles })
    }

    /// Message `id` (or its attribute `attr`) in `lang` (`zh-CN` when the language is not one
    /// of ours), with `args`.
    pub fn text(
        &self,
        lang: &str,
        id: &str,
        attr: Option<&str>,
        args: &[(&str, &str)],
    ) -> Result<String, Error> {
        let bundle = self
            .bundles
            .get(lang)
            .or_else(|| self.bundles.get("zh-CN"))
            .ok_or(Error::Internal("no message catalogue"))?;
        let message = bundle
            .get_message(id)
            .ok_or(Error::Internal("a message is missing from the catalogue"))?;
        let pattern = match attr {
            Some(a) => message.get_attribute(a).map(|a| a.value()),
            None => message.value(),
        }
        .ok_or(Error::Internal("a message is missing from the catalogue"))?;
        let mut fluent_args = FluentArgs::new();
        for (k, v) in args {
            fluent_args.set(*k, FluentValue::from(*v));
        }
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
        if !errors.is_empty() {
            return Err(Error::Internal("a message could not be formatted"));
        }
        Ok(text.into_owned())
    }
}

/// A message's id, its attributes' names and the variables it uses.
type Shape = (String, Vec<String>, Vec<String>);

/// Each message's [`Shape`], by id.
fn shape(source: &str) -> Result<Vec<Shape>, String> {
    use fluent_syntax::ast;
    let resource =
        FluentResource::try_new(source.to_string()).map_err(|_| "does not parse".to_string())?;
    let mut out = Vec::new();
    for entry in resource.entries() {
        let ast::Entry::Message(m) = entry else {
            continue;
        };
        let mut vars = Vec::new();
        let mut patterns: Vec<&ast::Pattern<&str>> = m.value.iter().collect();
        patterns.extend(m.attributes.iter().map(|a| &a.value));
        for p in patterns {
            for el in &p.elements {
                if let ast::PatternElement::Placeable {
                    expression:
                        ast::Expression::Inline(ast::InlineExpression::VariableReference { id }),
                } = el
                {
                    vars.push(id.name.to_string());
                }
            }
        }
        vars.sort();
        vars.dedup();
        let mut attrs: Vec<String> = m.attributes.iter().map(|a| a.id.name.to_string()).collect();
        attrs.sort();
        out.push((m.id.name.to_string(), attrs, vars));
    }
    out.sort();
    Ok(out)
}

/// Whether two catalogues (Chinese and English) hold the same messages, with the same
/// attributes and arguments: what every catalogue's test checks. `Err` names the first
/// difference.
pub fn twins(zh: &str, en: &str) -> Result<(), String> {
    let (zh, en) = (shape(zh)?, shape(en)?);
    for (a, b) in zh.iter().zip(&en) {
        if a != b {
            return Err(format!("zh-CN has {a:?} where en has {b:?}"));
        }
    }
    if zh.len() != en.len() {
        return Err(format!("zh-CN has {} messages, en {}", zh.len(), en.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message exists in both languages, with the same attributes and arguments.
    #[test]
    fn p30_every_message_exists_in_chinese_and_english() {
        let [(_, zh), (_, en)] = SOURCES;
        assert_eq!(twins(zh, en), Ok(()));
        assert!(zh.matches('=').count() > 10);
    }

    #[test]
    fn messages_format_with_their_arguments_in_both_languages() {
        let c = Catalogue::new().unwrap();
        for lang in ["zh-CN", "en"] {
            let text = c
                .text(
                    lang,
                    "request-refused",
                    Some("body"),
                    &[
                        ("kind", "K"),
                        ("request", "req_1"),
                        ("reason", "R"),
                        ("note", "N"),
                    ],
                )
                .unwrap();
            assert!(text.contains("req_1") && text.contains('R') && text.contains('N'));
            assert!(
                !text.contains('\u{2068}'),
                "no isolation marks in plain text"
            );
        }
        // A missing argument is an error, not a message with a hole.
        assert!(c.text("en", "request-received", None, &[]).is_err());
        // An unknown language falls back to Chinese.
        assert_eq!(
            c.text("fr", "request-kind-access", None, &[]).unwrap(),
            c.text("zh-CN", "request-kind-access", None, &[]).unwrap()
        );
    }
}
