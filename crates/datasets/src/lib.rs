//! The provider's other databases (issue 16): dataset files that declare where PI lives
//! outside Steward, their checks — against the policy, against each other and against the
//! live schema — and rights requests fanned out to them. `docs/datasets.md` is the format.

pub mod check;
pub mod erase;
pub mod live;
pub mod model;
pub mod parse;
pub mod run;

pub use check::{Catalogue, Problem};
pub use model::{Collection, DataType, Dataset, Direction, Erase, External, Field, Identity, Pos};

use steward_policy::Policy;

/// Reads and checks dataset files (`(name, text)` pairs) against `policy` and each other:
/// the catalogue, and every problem found in any of them.
pub fn load(files: &[(String, String)], policy: &Policy) -> (Catalogue, Vec<Problem>) {
    let mut datasets = Vec::new();
    let mut problems = Vec::new();
    for (name, text) in files {
        let (mut found, items) = parse::parse(text, name, policy);
        datasets.append(&mut found);
        problems.extend(items.into_iter().map(|diagnostic| Problem {
            file: name.clone(),
            diagnostic,
        }));
    }
    let (catalogue, mut more) = Catalogue::build(datasets);
    problems.append(&mut more);
    problems.sort_by(|a, b| {
        (&a.file, a.diagnostic.line, a.diagnostic.column).cmp(&(
            &b.file,
            b.diagnostic.line,
            b.diagnostic.column,
        ))
    });
    (catalogue, problems)
}

#[cfg(test)]
mod tests;
