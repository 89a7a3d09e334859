//! The rule every statement Steward prepares follows, so that it runs on a distributed
//! PostgreSQL (Citus) with the tables distributed as `docs/scaling.md` lays out, and a check
//! of one statement against it.
//!
//! A statement that touches a distributed table is one of:
//! - **router**: every distributed table it names is pinned to one subject — filtered by its
//!   distribution column equal to a parameter (`subject = $1`), given it in an `INSERT`'s
//!   columns, or joined on it to a table that is pinned (a co-located join) — so Citus sends
//!   it whole to one shard;
//! - **co-located read**: a `SELECT` of distributed tables joined only on their distribution
//!   columns and filtered by the distribution column against a parameter array
//!   (`WHERE s.id = ANY($1)`): Citus prunes to the shards holding those subjects and runs the
//!   join on each (a batch of reads, one statement per shape);
//! - **array insert**: an `INSERT` into one distributed table of rows from parameter arrays
//!   (`SELECT * FROM UNNEST($1::…[], …)`) with the distribution column among them; Citus
//!   routes each row to its shard;
//! - **fan-out read**: a `SELECT` of one distributed table alone — no join, no other table —
//!   which Citus runs on every shard. Only the operations `docs/scaling.md` lists use one.
//!
//! Never: a join of a distributed table with a function's rows (`UNNEST … JOIN`, `USING
//! UNNEST`), with a coordinator table or on another column; an `UPDATE` or `DELETE` of a
//! distributed table not pinned to one subject. Reference and coordinator tables are free on
//! their own.

/// Distributed tables and their distribution column.
pub const DISTRIBUTED: &[(&str, &str)] = &[
    ("subjects", "id"),
    ("records", "subject"),
    ("lookup", "subject"),
    ("consent_events", "subject"),
    ("consent_current", "subject"),
    ("disclosures", "subject"),
    ("purge_queue", "subject"),
    ("certificates", "subject"),
    ("legal_holds", "subject"),
    ("rights_requests", "subject"),
    ("otp_codes", "subject"),
    ("sessions", "subject"),
    ("data_keys", "subject"),
    ("destroyed", "subject"),
    ("subject_languages", "subject"),
    ("policy_events", "subject"),
    ("subject_links", "subject"),
    ("request_steps", "subject"),
    ("request_systems", "subject"),
];

/// Reference tables: a copy on every node.
pub const REFERENCE: &[&str] = &[
    "meta",
    "counters",
    "api_keys",
    "staff",
    "staff_sessions",
    "attempts",
    "webhook_endpoints",
    "policy_versions",
    "cases",
    "case_sets",
];

/// Tables kept on the coordinator alone: the deployment's one audit chain, and the outbox
/// written beside it.
pub const COORDINATOR: &[&str] = &["audit", "checkpoints", "outbox"];

/// The distributed tables whose fan-out reads `docs/scaling.md` lists.
pub const FAN_OUT: &[&str] = &[
    "lookup",
    "sessions",
    "legal_holds",
    "rights_requests",
    "records",
    "subjects",
    "purge_queue",
    "destroyed",
    "consent_current",
    "policy_events",
    "request_systems",
];

/// How a statement runs on a distributed PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// On one shard.
    Router,
    /// A join on the subject key, on the shards holding the subjects asked for.
    CoLocatedRead,
    /// Rows from parameter arrays into one distributed table, each to its shard.
    ArrayInsert,
    /// A read of one distributed table on every shard.
    FanOutRead(String),
    /// No distributed table at all.
    Local,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Param,
    Punct(char),
    Text,
}

fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            for c in chars.by_ref() {
                if c == '\'' {
                    break;
                }
            }
            out.push(Token::Text);
        } else if c == '$' {
            chars.next();
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push(Token::Param);
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                    w.push(c.to_ascii_lowercase());
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token::Word(w));
        } else {
            out.push(Token::Punct(c));
            chars.next();
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "where",
    "on",
    "left",
    "right",
    "inner",
    "join",
    "set",
    "values",
    "order",
    "limit",
    "returning",
    "using",
    "group",
    "select",
    "as",
    "and",
    "or",
    "cross",
    "full",
    "outer",
];

#[derive(Debug)]
enum Relation {
    Table { name: String, alias: String },
    Function,
}

fn word(t: Option<&Token>) -> Option<&str> {
    match t {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    }
}

/// Checks one statement against the rule; what shape it has, or why it breaks the rule.
pub fn check(sql: &str) -> Result<Shape, String> {
    let toks = tokens(sql);
    let at = |i: usize| toks.get(i);
    // Names a `WITH` introduces: derived from the statement's own parts, not tables.
    let mut ctes: Vec<String> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if let Token::Word(w) = t
            && (i == 1 && word(at(0)) == Some("with")
                || at(i.wrapping_sub(1)) == Some(&Token::Punct(',')))
            && word(at(i + 1)) == Some("as")
            && at(i + 2) == Some(&Token::Punct('('))
        {
            ctes.push(w.clone());
        }
    }
    let mut relations = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Token::Word(w) = t else { continue };
        if !matches!(w.as_str(), "from" | "join" | "into" | "update" | "using") {
            continue;
        }
        // `ON CONFLICT ... DO UPDATE` and a locking clause (`FOR UPDATE`) name no relation.
        if w == "update" && matches!(word(at(i.wrapping_sub(1))), Some("do" | "for")) {
            continue;
        }
        match (at(i + 1), at(i + 2)) {
            (Some(Token::Word(_)), Some(Token::Punct('('))) if w != "into" => {
                relations.push(Relation::Function);
            }
            (Some(Token::Word(name)), next) => {
                if ctes.contains(name) || name.contains('.') {
                    continue; // a CTE, or a catalog such as information_schema.*
                }
                let alias = match (word(next), word(at(i + 3))) {
                    (Some("as"), Some(a)) => a.to_string(),
                    (Some(a), _) if !KEYWORDS.contains(&a) => a.to_string(),
                    _ => name.clone(),
                };
                relations.push(Relation::Table {
                    name: name.clone(),
                    alias,
                });
            }
            (Some(Token::Punct('(')), _) => {} // a subquery: its own FROM is scanned too
            _ => {}
        }
    }
    let kind = word(at(0)).unwrap_or("");
    let mut distributed: Vec<(String, String, &str)> = Vec::new(); // (name, alias, column)
    let mut others = 0;
    let mut coordinator = false;
    let mut functions = 0;
    for r in &relations {
        match r {
            Relation::Function => functions += 1,
            Relation::Table { name, alias } => {
                if let Some((_, col)) = DISTRIBUTED.iter().find(|(t, _)| t == name) {
                    distributed.push((name.clone(), alias.clone(), col));
                } else if REFERENCE.contains(&name.as_str()) {
                    others += 1;
                } else if COORDINATOR.contains(&name.as_str()) {
                    others += 1;
                    coordinator = true;
                } else {
                    return Err(format!("names `{name}`, a table of no known kind"));
                }
            }
        }
    }
    if distributed.is_empty() {
        return Ok(Shape::Local);
    }
    if coordinator {
        return Err("joins a distributed table with a coordinator table".into());
    }
    // The INSERT's target and its column list (only an INSERT says `INTO`).
    let insert_target = toks
        .iter()
        .position(|t| t == &Token::Word("into".into()))
        .map(|i| {
            let name = word(at(i + 1)).unwrap_or("").to_string();
            let cols: Vec<String> = if at(i + 2) == Some(&Token::Punct('(')) {
                toks.iter()
                    .skip(i + 3)
                    .take_while(|t| **t != Token::Punct(')'))
                    .filter_map(|t| word(Some(t)).map(String::from))
                    .collect()
            } else {
                Vec::new()
            };
            (name, cols)
        });
    if functions > 0 {
        let array_insert = kind == "insert"
            && distributed.len() == 1
            && others == 0
            && insert_target.as_ref().is_some_and(|(name, cols)| {
                distributed
                    .first()
                    .is_some_and(|(t, _, col)| t == name && cols.iter().any(|c| c == col))
            });
        return if array_insert {
            Ok(Shape::ArrayInsert)
        } else {
            Err("joins a distributed table with a function's rows (Citus: complex joins are only supported when all distributed tables are co-located and joined on their distribution columns)".into())
        };
    }
    // Which relations are pinned to one subject.
    let equals_param = |name: &str| {
        toks.windows(3).any(|w| match w {
            [Token::Word(a), Token::Punct('='), Token::Param] => a == name,
            [Token::Param, Token::Punct('='), Token::Word(a)] => a == name,
            _ => false,
        })
    };
    let pinned: Vec<bool> = distributed
        .iter()
        .map(|(name, alias, col)| {
            equals_param(&format!("{alias}.{col}"))
                || (alias == name && equals_param(col))
                || insert_target
                    .as_ref()
                    .is_some_and(|(t, cols)| t == name && cols.iter().any(|c| c == col))
        })
        .collect();
    // Co-located joins: `a.col = b.col` on both distribution columns carries a pin across.
    let pinned = spread(&toks, &distributed, pinned);
    if pinned.iter().all(|p| *p) {
        return Ok(Shape::Router);
    }
    // A batch: filtered by a distribution column against an array, every distributed table
    // joined to it on distribution columns.
    let any_filter = |name: &str| {
        toks.windows(5).any(|w| match w {
            [
                Token::Word(a),
                Token::Punct('='),
                Token::Word(any),
                Token::Punct('('),
                Token::Param,
            ] => a == name && any == "any",
            _ => false,
        })
    };
    let reached: Vec<bool> = distributed
        .iter()
        .map(|(name, alias, col)| {
            any_filter(&format!("{alias}.{col}")) || (alias == name && any_filter(col))
        })
        .collect();
    let reached = spread(&toks, &distributed, reached);
    if kind == "select" && others == 0 && reached.iter().all(|r| *r) {
        return Ok(Shape::CoLocatedRead);
    }
    let single = distributed.len() == 1 && others == 0;
    match (kind, single, distributed.first()) {
        ("select", true, Some((name, _, _))) => Ok(Shape::FanOutRead(name.clone())),
        ("update" | "delete" | "insert" | "with", _, _) => {
            Err("changes a distributed table without naming one subject".into())
        }
        _ => Err("joins distributed tables that are not all pinned to one subject".into()),
    }
}

/// Carries a mark across joins on distribution columns (`a.col = b.col` where both are their
/// tables' distribution columns) until nothing changes: which tables a pin or a filter reaches.
fn spread(
    toks: &[Token],
    distributed: &[(String, String, &str)],
    mut marked: Vec<bool>,
) -> Vec<bool> {
    loop {
        let mut changed = false;
        for w in toks.windows(3) {
            let [Token::Word(l), Token::Punct('='), Token::Word(r)] = w else {
                continue;
            };
            let side = |q: &str| {
                distributed
                    .iter()
                    .position(|(_, alias, col)| q == format!("{alias}.{col}"))
            };
            if let (Some(a), Some(b)) = (side(l), side(r)) {
                let either = marked.get(a).copied().unwrap_or(false)
                    || marked.get(b).copied().unwrap_or(false);
                for i in [a, b] {
                    if let Some(m) = marked.get_mut(i)
                        && either
                        && !*m
                    {
                        *m = true;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return marked;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_takes_router_queries_and_refuses_what_citus_refuses() {
        assert_eq!(check(super::super::SUBJECT_RECORDS), Ok(Shape::Router));
        assert_eq!(check(super::super::SUBJECT_STATE), Ok(Shape::Router));
        assert_eq!(
            check(
                "INSERT INTO records (id, subject, category) SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[])"
            ),
            Ok(Shape::ArrayInsert)
        );
        assert_eq!(
            check("SELECT DISTINCT subject FROM lookup WHERE digest = $1 ORDER BY subject"),
            Ok(Shape::FanOutRead("lookup".into()))
        );
        assert_eq!(
            check(
                "UPDATE counters SET value = value + $1 WHERE name = 'record_id' RETURNING value"
            ),
            Ok(Shape::Local)
        );
        // What the outside test saw fail on Citus 13: a batch joined through UNNEST.
        let unnest_join = "SELECT q.n, s.state, c.granted, r.id FROM UNNEST($1::bytea[]) WITH ORDINALITY AS q(id, n)
             JOIN subjects s ON s.id = q.id
             LEFT JOIN consent_current c ON c.subject = s.id AND c.target = $2
             LEFT JOIN records r ON r.subject = s.id AND r.category = ANY($3)";
        assert!(check(unnest_join).is_err());
        assert_eq!(check(super::super::RECORDS_MANY), Ok(Shape::CoLocatedRead));
        assert_eq!(check(super::super::STATES_MANY), Ok(Shape::CoLocatedRead));
        // A join on another column is no co-located read.
        assert!(check("SELECT s.id FROM subjects s LEFT JOIN records r ON r.category = s.state WHERE s.id = ANY($1)").is_err());
        assert!(check("DELETE FROM lookup l USING UNNEST($1::bytea[], $2::bigint[]) AS k(subject, id) WHERE l.subject = k.subject AND l.record = k.id").is_err());
        assert!(check("UPDATE legal_holds SET lifted_ms = $2 WHERE id = $1").is_err());
        // A locking clause names no table.
        assert_eq!(
            check(
                "UPDATE outbox SET lease_ms = $2 WHERE id IN (SELECT id FROM outbox LIMIT $3 FOR UPDATE SKIP LOCKED)"
            ),
            Ok(Shape::Local)
        );
        assert!(check("SELECT s.state FROM subjects s JOIN records r ON r.category = s.state WHERE s.id = $1").is_err());
        assert!(check("SELECT a.seq FROM audit a JOIN subjects s ON s.id = $1").is_err());
        assert!(check("SELECT x FROM mystery WHERE subject = $1").is_err());
    }
}
