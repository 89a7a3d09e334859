//! Reading a dataset file: YAML in a documented subset of Fides' dataset format
//! (`docs/datasets.md`), with Steward's own keys under `steward:`. Every problem is collected
//! with its line and column; nothing stops at the first.

use marked_yaml::{Node, types::MarkedMappingNode};
use steward_policy::{Diagnostic, Policy};

use crate::model::{
    Collection, DataType, Dataset, Direction, Erase, External, Field, Identity, Pos, Reference,
};

/// Keys Fides defines that say nothing Steward acts on: accepted and left alone.
const DESCRIPTIVE: &[&str] = &[
    "description",
    "data_qualifier",
    "retention",
    "meta",
    "tags",
    "organization_fides_key",
    "third_country_transfers",
    "joint_controller",
    "data_stewards",
];

/// Reads one file's datasets, resolving categories and identities against `policy`.
pub fn parse(src: &str, file: &str, policy: &Policy) -> (Vec<Dataset>, Vec<Diagnostic>) {
    let mut r = Reader {
        policy,
        file,
        items: Vec::new(),
    };
    let options = marked_yaml::LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root = match marked_yaml::parse_yaml_with_options(0, src, options) {
        Ok(root) => root,
        Err(e) => {
            r.error(load_error_pos(&e), "yaml_syntax", yaml_message(&e));
            return (Vec::new(), r.items);
        }
    };
    let mut out = Vec::new();
    if let Some(top) = r.mapping(&root, "a dataset file") {
        r.keys(top, &["dataset"], &[], "a dataset file");
        match top.get_node("dataset") {
            None => r.error(
                node_pos(&root),
                "missing_key",
                "a dataset file has a `dataset` list".into(),
            ),
            Some(list) => {
                if let Some(list) = r.sequence(list, "`dataset`") {
                    for d in list.iter() {
                        if let Some(d) = r.dataset(d) {
                            out.push(d);
                        }
                    }
                }
            }
        }
    }
    (out, r.items)
}

fn load_error_pos(e: &marked_yaml::LoadError) -> Pos {
    use marked_yaml::LoadError as E;
    let m = match e {
        E::TopLevelMustBeMapping(m)
        | E::TopLevelMustBeSequence(m)
        | E::UnexpectedAnchor(m)
        | E::MappingKeyMustBeScalar(m)
        | E::UnexpectedTag(m)
        | E::ScanError(m, _) => Some(m),
        E::DuplicateKey(d) => d.key.span().start(),
    };
    m.map_or(Pos { line: 1, column: 1 }, |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

fn yaml_message(e: &marked_yaml::LoadError) -> String {
    use marked_yaml::LoadError as E;
    match e {
        E::DuplicateKey(d) => format!("`{}` is given twice", d.key.as_str()),
        E::UnexpectedAnchor(_) => "anchors and aliases are not read in dataset files".into(),
        E::UnexpectedTag(_) => "tags (`!name`) are not read in dataset files".into(),
        E::MappingKeyMustBeScalar(_) => "a key is a plain word".into(),
        E::TopLevelMustBeMapping(_) | E::TopLevelMustBeSequence(_) => {
            "a dataset file is a mapping with a `dataset` list".into()
        }
        // The scanner's own words, without the position it prefixes (given separately).
        E::ScanError(_, s) => format!("not YAML: {}", s.info()),
    }
}

/// Where a node starts: for a mapping, its first key (a mapping's own span starts at that
/// key's `:`).
fn node_pos(node: &Node) -> Pos {
    let start = match node.as_mapping().and_then(|m| m.keys().next()) {
        Some(first) => first.span().start(),
        None => node.span().start(),
    };
    start.map_or(Pos::default(), |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

struct Reader<'a> {
    policy: &'a Policy,
    file: &'a str,
    items: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    fn error(&mut self, at: Pos, code: &'static str, message: String) {
        self.items.push(Diagnostic {
            code,
            line: at.line,
            column: at.column,
            message,
        });
    }

    fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n MarkedMappingNode> {
        let m = node.as_mapping();
        if m.is_none() {
            self.error(
                node_pos(node),
                "wrong_type",
                format!("{what} is a mapping of keys to values"),
            );
        }
        m
    }

    fn sequence<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
    ) -> Option<&'n marked_yaml::types::MarkedSequenceNode> {
        let s = node.as_sequence();
        if s.is_none() {
            self.error(node_pos(node), "wrong_type", format!("{what} is a list"));
        }
        s
    }

    /// Reports every key of `map` that is neither in `known` nor in `descriptive`.
    fn keys(&mut self, map: &MarkedMappingNode, known: &[&str], descriptive: &[&str], what: &str) {
        for (k, _) in map.iter() {
            let key = k.as_str();
            if !known.contains(&key) && !descriptive.contains(&key) {
                let at = k.span().start().map_or(Pos::default(), |m| Pos {
                    line: m.line(),
                    column: m.column(),
                });
                self.error(
                    at,
                    "unknown_key",
                    format!(
                        "`{key}` is not read in {what} (it reads: {})",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }

    /// The plain text at `key`, if present; a non-text value is reported.
    fn text(&mut self, map: &MarkedMappingNode, key: &str) -> Option<(String, Pos)> {
        let node = map.get_node(key)?;
        match node.as_scalar() {
            Some(s) => Some((s.as_str().to_string(), node_pos(node))),
            None => {
                self.error(
                    node_pos(node),
                    "wrong_type",
                    format!("`{key}` is a plain value"),
                );
                None
            }
        }
    }

    fn flag(&mut self, map: &MarkedMappingNode, key: &str) -> Option<(bool, Pos)> {
        let (word, at) = self.text(map, key)?;
        match word.as_str() {
            "true" => Some((true, at)),
            "false" => Some((false, at)),
            _ => {
                self.error(at, "wrong_type", format!("`{key}` is true or false"));
                None
            }
        }
    }

    /// A required name: present, plain, of letters, digits and `_` (a SQL identifier Steward
    /// quotes as it is).
    fn name(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        what: &str,
        at: Pos,
    ) -> Option<(String, Pos)> {
        let Some((name, pos)) = self.text(map, key) else {
            if map.get_node(key).is_none() {
                self.error(at, "missing_key", format!("{what} has a `{key}`"));
            }
            return None;
        };
        let plain = !name.is_empty()
            && name.len() <= 63
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !plain {
            self.error(
                pos,
                "invalid_name",
                format!("`{key}` is 1 to 63 letters, digits and `_`, not starting with a digit"),
            );
            return None;
        }
        Some((name, pos))
    }

    fn dataset(&mut self, node: &Node) -> Option<Dataset> {
        let at = node_pos(node);
        let map = self.mapping(node, "a dataset")?;
        self.keys(
            map,
            &["fides_key", "name", "collections", "steward"],
            &[DESCRIPTIVE, &["data_categories"]].concat(),
            "a dataset",
        );
        let key = self.name(map, "fides_key", "a dataset", at);
        let name = self.text(map, "name").map(|(n, _)| n);
        let external = match map.get_node("steward") {
            Some(s) => self.external(s),
            None => None,
        };
        let mut collections = Vec::new();
        match map.get_node("collections") {
            Some(list) => {
                if let Some(list) = self.sequence(list, "`collections`") {
                    for c in list.iter() {
                        if let Some(c) = self.collection(c) {
                            collections.push(c);
                        }
                    }
                }
            }
            None if external.is_none() => self.error(
                at,
                "missing_key",
                "a dataset has `collections` (or is external: `steward: {external: true, ...}`)"
                    .into(),
            ),
            None => {}
        }
        let (key, _) = key?;
        Some(Dataset {
            name: name.unwrap_or_else(|| key.clone()),
            key,
            pos: at,
            file: self.file.to_string(),
            external,
            collections,
        })
    }

    /// A dataset's `steward:` block: `external`, with the identities it is sent and the
    /// categories it holds.
    fn external(&mut self, node: &Node) -> Option<External> {
        let at = node_pos(node);
        let map = self.mapping(node, "`steward`")?;
        self.keys(
            map,
            &["external", "identities", "categories"],
            &[],
            "a dataset's `steward`",
        );
        let external = self.flag(map, "external").is_some_and(|(e, _)| e);
        let identities = self.words(map, "identities", |r, w, p| r.identity(w, p));
        let categories = self.words(map, "categories", |r, w, p| r.category(w, p));
        if !external {
            if map.get_node("identities").is_some() || map.get_node("categories").is_some() {
                self.error(
                    at,
                    "invalid_value",
                    "`identities` and `categories` are for an external system (`external: true`)"
                        .into(),
                );
            }
            return None;
        }
        if identities.is_empty() {
            self.error(
                at,
                "missing_key",
                "an external system names the `identities` it is sent".into(),
            );
        }
        Some(External {
            identities,
            categories,
        })
    }

    /// A list of words at `key`, each resolved by `resolve` (which reports what it cannot).
    fn words<T>(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        mut resolve: impl FnMut(&mut Self, &str, Pos) -> Option<T>,
    ) -> Vec<(T, Pos)> {
        let mut out = Vec::new();
        let Some(node) = map.get_node(key) else {
            return out;
        };
        let what = format!("`{key}`");
        let Some(list) = self.sequence(node, &what) else {
            return out;
        };
        for item in list.iter() {
            let at = node_pos(item);
            match item.as_scalar() {
                Some(s) => {
                    if let Some(v) = resolve(self, s.as_str(), at) {
                        out.push((v, at));
                    }
                }
                None => self.error(at, "wrong_type", format!("{what} lists plain words")),
            }
        }
        out
    }

    /// The policy category `word` names, by its name or its taxonomy key.
    fn category(&mut self, word: &str, at: Pos) -> Option<String> {
        let found = self
            .policy
            .categories
            .iter()
            .find(|c| c.name == word || c.taxonomy == word);
        if found.is_none() {
            self.error(
                at,
                "unknown_category",
                format!(
                    "`{word}` is neither a category of the policy nor a category's taxonomy key"
                ),
            );
        }
        found.map(|c| c.name.clone())
    }

    /// An identity: `subject_id`, Fides' `email` and `phone_number`, or a category.
    fn identity(&mut self, word: &str, at: Pos) -> Option<Identity> {
        let taxonomy = match word {
            "subject_id" => return Some(Identity::SubjectId),
            "email" => Some("user.contact.email"),
            "phone_number" => Some("user.contact.phone_number"),
            _ => None,
        };
        let found = self.policy.categories.iter().find(|c| {
            c.name == word || c.taxonomy == word || taxonomy.is_some_and(|t| c.taxonomy == t)
        });
        match found {
            Some(c) => Some(Identity::Category(c.name.clone())),
            None => {
                self.error(
                    at,
                    "unknown_identity",
                    format!(
                        "`{word}` is no identity: `subject_id`, or a category of the policy (by name or taxonomy key) whose values Steward holds for the subject"
                    ),
                );
                None
            }
        }
    }

    fn collection(&mut self, node: &Node) -> Option<Collection> {
        let at = node_pos(node);
        let map = self.mapping(node, "a collection")?;
        self.keys(
            map,
            &["name", "fields", "fides_meta", "steward"],
            &[DESCRIPTIVE, &["data_categories"]].concat(),
            "a collection",
        );
        let name = self.name(map, "name", "a collection", at);
        let mut delete_rows = None;
        if let Some(meta) = map.get_node("fides_meta")
            && let Some(meta) = self.mapping(meta, "`fides_meta`")
        {
            self.keys(
                meta,
                &["masking_strategy_override", "skip_processing"],
                &[],
                "a collection's `fides_meta`",
            );
            if let Some(m) = meta.get_node("masking_strategy_override")
                && let Some(m) = self.mapping(m, "`masking_strategy_override`")
            {
                self.keys(m, &["strategy"], &[], "`masking_strategy_override`");
                if let Some((s, p)) = self.text(m, "strategy") {
                    if s == "delete" {
                        delete_rows = Some(p);
                    } else {
                        self.error(
                            p,
                            "invalid_value",
                            "the only `strategy` read here is `delete` (rows are deleted); fields are masked by their `steward.erase`".into(),
                        );
                    }
                }
            }
            if let Some((true, p)) = self.flag(meta, "skip_processing") {
                self.error(
                    p,
                    "invalid_value",
                    "a collection is not skipped: leave out one that holds no PI of the subject's"
                        .into(),
                );
            }
        }
        if let Some(s) = map.get_node("steward")
            && let Some(s) = self.mapping(s, "`steward`")
        {
            self.keys(s, &["erase"], &[], "a collection's `steward`");
            if let Some((word, p)) = self.text(s, "erase") {
                if word == "delete_row" {
                    delete_rows = Some(p);
                } else {
                    self.error(
                        p,
                        "invalid_value",
                        "a collection's `erase` is `delete_row`; fields say how each is masked"
                            .into(),
                    );
                }
            }
        }
        let mut fields = Vec::new();
        match map.get_node("fields") {
            Some(list) => {
                if let Some(list) = self.sequence(list, "`fields`") {
                    for f in list.iter() {
                        if let Some(f) = self.field(f) {
                            fields.push(f);
                        }
                    }
                }
            }
            None => self.error(at, "missing_key", "a collection has `fields`".into()),
        }
        // A field's `delete_row` deletes its collection's rows.
        if delete_rows.is_none() {
            delete_rows = fields
                .iter()
                .find(|f| f.erase == Erase::DeleteRow)
                .and_then(|f| f.erase_pos);
        }
        let (name, _) = name?;
        Some(Collection {
            name,
            pos: at,
            delete_rows,
            fields,
        })
    }

    fn field(&mut self, node: &Node) -> Option<Field> {
        let at = node_pos(node);
        let map = self.mapping(node, "a field")?;
        self.keys(
            map,
            &["name", "data_categories", "fides_meta", "steward"],
            DESCRIPTIVE,
            "a field",
        );
        if let Some(nested) = map.get_node("fields") {
            self.error(
                node_pos(nested),
                "unsupported",
                "nested fields are not read: Steward reaches tables' columns".into(),
            );
        }
        let name = self.name(map, "name", "a field", at);
        let categories = self.words(map, "data_categories", |r, w, p| r.category(w, p));
        let mut identity = None;
        let mut primary_key = false;
        let mut data_type = None;
        let mut references = Vec::new();
        if let Some(meta) = map.get_node("fides_meta")
            && let Some(meta) = self.mapping(meta, "`fides_meta`")
        {
            self.keys(
                meta,
                &["identity", "primary_key", "data_type", "references"],
                &[
                    "length",
                    "return_all_elements",
                    "read_only",
                    "custom_request_field",
                ],
                "a field's `fides_meta`",
            );
            if let Some((word, p)) = self.text(meta, "identity") {
                identity = self.identity(&word, p).map(|i| (i, p));
            }
            primary_key = self.flag(meta, "primary_key").is_some_and(|(b, _)| b);
            if let Some((word, p)) = self.text(meta, "data_type") {
                match DataType::parse(&word) {
                    Some(t) => data_type = Some((t, p)),
                    None => self.error(
                        p,
                        "invalid_value",
                        format!("`data_type` is one of: {}", DataType::NAMES.join(", ")),
                    ),
                }
            }
            if let Some(list) = meta.get_node("references")
                && let Some(list) = self.sequence(list, "`references`")
            {
                for r in list.iter() {
                    if let Some(r) = self.reference(r) {
                        references.push(r);
                    }
                }
            }
        }
        let mut erase = if categories.is_empty() && identity.is_none() {
            Erase::Keep
        } else {
            Erase::Null
        };
        let mut erase_pos = None;
        let mut correctable = false;
        if let Some(s) = map.get_node("steward")
            && let Some(s) = self.mapping(s, "`steward`")
        {
            self.keys(s, &["erase", "correctable"], &[], "a field's `steward`");
            if let Some(e) = s.get_node("erase") {
                let p = node_pos(e);
                erase_pos = Some(p);
                if let Some(fixed) = e.as_mapping() {
                    self.keys(fixed, &["fixed"], &[], "`erase`");
                    match self.text(fixed, "fixed") {
                        Some((v, _)) => erase = Erase::Fixed(v),
                        None => self.error(
                            p,
                            "invalid_value",
                            "`erase: {fixed: <value>}` names the value".into(),
                        ),
                    }
                } else if let Some(word) = e.as_scalar() {
                    match word.as_str() {
                        "null" => erase = Erase::Null,
                        "hash" => erase = Erase::Hash,
                        "delete_row" => erase = Erase::DeleteRow,
                        "keep" => erase = Erase::Keep,
                        _ => self.error(
                            p,
                            "invalid_value",
                            "`erase` is `null`, `hash`, `delete_row`, `keep` or `{fixed: <value>}`"
                                .into(),
                        ),
                    }
                } else {
                    self.error(
                        p,
                        "wrong_type",
                        "`erase` is a word or `{fixed: <value>}`".into(),
                    );
                }
            }
            correctable = self.flag(s, "correctable").is_some_and(|(b, _)| b);
        }
        let (name, _) = name?;
        Some(Field {
            name,
            pos: at,
            categories,
            identity,
            primary_key,
            data_type,
            references,
            erase,
            erase_pos,
            correctable,
        })
    }

    fn reference(&mut self, node: &Node) -> Option<Reference> {
        let at = node_pos(node);
        let map = self.mapping(node, "a reference")?;
        self.keys(map, &["dataset", "field", "direction"], &[], "a reference");
        let dataset = self.text(map, "dataset").map(|(d, _)| d);
        let Some((target, p)) = self.text(map, "field") else {
            self.error(
                at,
                "missing_key",
                "a reference names its `field` as `collection.field`".into(),
            );
            return None;
        };
        let Some((collection, field)) = target.split_once('.') else {
            self.error(
                p,
                "invalid_value",
                "a reference's `field` is `collection.field`".into(),
            );
            return None;
        };
        if field.contains('.') {
            self.error(
                p,
                "unsupported",
                "nested fields are not read: a reference's `field` is `collection.field`".into(),
            );
            return None;
        }
        let direction = match self.text(map, "direction") {
            None => Direction::Both,
            Some((d, _)) if d == "from" => Direction::From,
            Some((d, _)) if d == "to" => Direction::To,
            Some((_, p)) => {
                self.error(p, "invalid_value", "`direction` is `from` or `to`".into());
                Direction::Both
            }
        };
        Some(Reference {
            dataset: dataset.unwrap_or_default(),
            collection: collection.to_string(),
            field: field.to_string(),
            direction,
            pos: at,
        })
    }
}
