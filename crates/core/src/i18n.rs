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
        let mut bundles = HashMap::new();
        for (tag, source) in SOURCES {
            let resource = FluentResource::try_new(source.to_string())
                .map_err(|_| Error::Internal("a message catalogue does not parse"))?;
            let lang: unic_langid::LanguageIdentifier = tag
                .parse()
                .map_err(|_| Error::Internal("a message catalogue's language tag is invalid"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![lang]);
            // Plain text for email: no Unicode isolation marks around arguments.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|_| Error::Internal("a message catalogue defines a message twice"))?;
            bundles.insert(tag, bundle);
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

#[cfg(test)]
mod tests {
    use super::*;
    use fluent_bundle::FluentResource;
    use fluent_syntax::ast;

    /// Each message id with its attributes' names and the variables it uses.
    fn shape(source: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
        let resource = FluentResource::try_new(source.to_string()).unwrap();
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
            let mut attrs: Vec<String> =
                m.attributes.iter().map(|a| a.id.name.to_string()).collect();
            attrs.sort();
            out.push((m.id.name.to_string(), attrs, vars));
        }
        out.sort();
        out
    }

    /// Every message exists in both languages, with the same attributes and arguments.
    #[test]
    fn p30_every_message_exists_in_chinese_and_english() {
        let [(_, zh), (_, en)] = SOURCES;
        let (zh, en) = (shape(zh), shape(en));
        assert!(zh.len() > 10, "{zh:?}");
        let names = |s: &[(String, Vec<String>, Vec<String>)]| -> Vec<String> {
            s.iter().map(|m| m.0.clone()).collect()
        };
        assert_eq!(
            names(&zh),
            names(&en),
            "the same messages in both languages"
        );
        assert_eq!(
            zh, en,
            "the same attributes and arguments in both languages"
        );
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
