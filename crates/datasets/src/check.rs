//! What can be known of datasets without reaching their databases: every name unique, every
//! reference resolved, every collection holding PI reachable from an identity, no cycle of
//! references, no row deletion that a reference would forbid.

use std::collections::{BTreeMap, BTreeSet};

use steward_policy::Diagnostic;

use crate::model::{Dataset, Direction, Erase, Pos};

/// A collection: its dataset's and its own index.
pub type Node = (usize, usize);

/// A reference resolved: the child `from` (its field at `field`) holds values of the
/// parent `to`'s field at `to_field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The referring collection.
    pub from: Node,
    /// Its field's index.
    pub field: usize,
    /// The referred collection.
    pub to: Node,
    /// Its field's index.
    pub to_field: usize,
    /// Which way a walk may follow it.
    pub direction: Direction,
    /// Where it was declared.
    pub pos: Pos,
}

/// Every dataset, with their references resolved.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    /// The datasets, in the order their files were given.
    pub datasets: Vec<Dataset>,
    /// Every resolved reference.
    pub edges: Vec<Edge>,
}

/// One problem, in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// What and where.
    pub diagnostic: Diagnostic,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.diagnostic;
        write!(
            f,
            "{}:{}:{}: error[{}]: {}",
            self.file, d.line, d.column, d.code, d.message
        )
    }
}

struct Report<'a> {
    datasets: &'a [Dataset],
    problems: Vec<Problem>,
}

impl Report<'_> {
    fn error(&mut self, dataset: usize, at: Pos, code: &'static str, message: String) {
        let file = self
            .datasets
            .get(dataset)
            .map(|d| d.file.clone())
            .unwrap_or_default();
        self.problems.push(Problem {
            file,
            diagnostic: Diagnostic {
                code,
                line: at.line,
                column: at.column,
                message,
            },
        });
    }
}

impl Catalogue {
    /// Checks `datasets` together and resolves their references; every problem found.
    pub fn build(datasets: Vec<Dataset>) -> (Catalogue, Vec<Problem>) {
        let mut r = Report {
            datasets: &datasets,
            problems: Vec::new(),
        };
        names(&mut r);
        let edges = resolve(&mut r);
        reachable(&mut r, &edges);
        cycles(&mut r, &edges);
        deletions(&mut r, &edges);
        let mut problems = r.problems;
        problems.sort_by(|a, b| {
            (&a.file, a.diagnostic.line, a.diagnostic.column).cmp(&(
                &b.file,
                b.diagnostic.line,
                b.diagnostic.column,
            ))
        });
        problems.dedup();
        (Catalogue { datasets, edges }, problems)
    }

    /// The dataset keyed `key`.
    pub fn dataset(&self, key: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.key == key)
    }

    /// The collections of dataset `d` in the order erasure works on them: every collection
    /// before those it refers to (children before parents), ties in file order. A cycle
    /// (reported by the check) leaves its collections last, in file order.
    pub fn erase_order(&self, d: usize) -> Vec<usize> {
        let n = self.datasets.get(d).map_or(0, |ds| ds.collections.len());
        // Parents of each collection within the dataset.
        let mut referred_by: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for e in &self.edges {
            if e.from.0 == d
                && e.to.0 == d
                && e.from.1 != e.to.1
                && let Some(set) = referred_by.get_mut(e.to.1)
            {
                set.insert(e.from.1);
            }
        }
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            // The first collection (in file order) whose children are all done.
            let next = (0..n).find(|&c| {
                !done.get(c).copied().unwrap_or(true)
                    && referred_by.get(c).is_some_and(|kids| {
                        kids.iter().all(|k| done.get(*k).copied().unwrap_or(true))
                    })
            });
            match next {
                Some(c) => {
                    if let Some(slot) = done.get_mut(c) {
                        *slot = true;
                    }
                    order.push(c);
                }
                None => {
                    for c in 0..n {
                        if !done.get(c).copied().unwrap_or(true) {
                            order.push(c);
                        }
                    }
                    break;
                }
            }
        }
        order
    }
}

/// Dataset keys unique across files; collection names unique in a dataset; field names in a
/// collection.
fn names(r: &mut Report<'_>) {
    let mut keys: BTreeMap<&str, (String, Pos)> = BTreeMap::new();
    for (di, d) in r.datasets.iter().enumerate() {
        if let Some((file, at)) = keys.get(d.key.as_str()) {
            let message = format!(
                "dataset `{}` is also declared at {file}:{}:{}",
                d.key, at.line, at.column
            );
            r.problems.push(Problem {
                file: d.file.clone(),
                diagnostic: Diagnostic {
                    code: "duplicate_name",
                    line: d.pos.line,
                    column: d.pos.column,
                    message,
                },
            });
            continue;
        }
        keys.insert(&d.key, (d.file.clone(), d.pos));
        let mut seen = BTreeSet::new();
        for c in &d.collections {
            if !seen.insert(c.name.as_str()) {
                let message = format!("collection `{}` is declared twice in `{}`", c.name, d.key);
                r.error(di, c.pos, "duplicate_name", message);
            }
            let mut fields = BTreeSet::new();
            for f in &c.fields {
                if !fields.insert(f.name.as_str()) {
                    let message = format!("field `{}.{}` is declared twice", c.name, f.name);
                    r.error(di, f.pos, "duplicate_name", message);
                }
                if f.correctable && !f.is_pi() {
                    let message = format!(
                        "`{}.{}` is correctable but holds no category of the policy",
                        c.name, f.name
                    );
                    r.error(di, f.pos, "invalid_value", message);
                }
            }
            let acts = c.delete_rows.is_some() || c.fields.iter().any(|f| f.erase != Erase::Keep);
            if d.external.is_none() && acts && !c.fields.iter().any(|f| f.primary_key) {
                let message = format!(
                    "erasure deletes or masks rows of `{}`, but no field declares `fides_meta.primary_key`: rows are addressed by their key",
                    c.name
                );
                r.error(di, c.pos, "missing_key", message);
            }
        }
    }
}

/// Every reference resolved to a dataset, collection and field that exist and can be
/// queried.
fn resolve(r: &mut Report<'_>) -> Vec<Edge> {
    let mut edges = Vec::new();
    let datasets = r.datasets;
    for (di, d) in datasets.iter().enumerate() {
        for (ci, c) in d.collections.iter().enumerate() {
            for (fi, f) in c.fields.iter().enumerate() {
                for reference in &f.references {
                    let target = if reference.dataset.is_empty() {
                        d.key.as_str()
                    } else {
                        reference.dataset.as_str()
                    };
                    let Some(ti) = datasets.iter().position(|t| t.key == target) else {
                        r.error(
                            di,
                            reference.pos,
                            "dangling_reference",
                            format!(
                                "`{}.{}` refers to dataset `{target}`, which no file declares",
                                c.name, f.name
                            ),
                        );
                        continue;
                    };
                    let Some(t) = datasets.get(ti) else { continue };
                    if t.external.is_some() {
                        r.error(
                            di,
                            reference.pos,
                            "dangling_reference",
                            format!("`{}.{}` refers to `{target}`, an external system Steward cannot query", c.name, f.name),
                        );
                        continue;
                    }
                    let Some(tci) = t
                        .collections
                        .iter()
                        .position(|x| x.name == reference.collection)
                    else {
                        r.error(
                            di,
                            reference.pos,
                            "dangling_reference",
                            format!(
                                "`{}.{}` refers to `{}.{}`, but `{target}` has no collection `{}`",
                                c.name,
                                f.name,
                                reference.collection,
                                reference.field,
                                reference.collection
                            ),
                        );
                        continue;
                    };
                    let Some(tfi) = t
                        .collections
                        .get(tci)
                        .and_then(|tc| tc.fields.iter().position(|x| x.name == reference.field))
                    else {
                        r.error(
                            di,
                            reference.pos,
                            "dangling_reference",
                            format!(
                                "`{}.{}` refers to `{}.{}`, but `{}` has no field `{}`",
                                c.name,
                                f.name,
                                reference.collection,
                                reference.field,
                                reference.collection,
                                reference.field
                            ),
                        );
                        continue;
                    };
                    edges.push(Edge {
                        from: (di, ci),
                        field: fi,
                        to: (ti, tci),
                        to_field: tfi,
                        direction: reference.direction,
                        pos: reference.pos,
                    });
                }
            }
        }
    }
    edges
}

/// The collections a walk from the subject's identities reaches.
pub fn walk_reach(datasets: &[Dataset], edges: &[Edge]) -> BTreeSet<Node> {
    let mut reached: BTreeSet<Node> = BTreeSet::new();
    let mut queue: Vec<Node> = Vec::new();
    for (di, d) in datasets.iter().enumerate() {
        for (ci, c) in d.collections.iter().enumerate() {
            if c.fields.iter().any(|f| f.identity.is_some()) && reached.insert((di, ci)) {
                queue.push((di, ci));
            }
        }
    }
    while let Some(n) = queue.pop() {
        for e in edges {
            let next = if e.to == n && matches!(e.direction, Direction::From | Direction::Both) {
                Some(e.from)
            } else if e.from == n && matches!(e.direction, Direction::To | Direction::Both) {
                Some(e.to)
            } else {
                None
            };
            if let Some(next) = next
                && reached.insert(next)
            {
                queue.push(next);
            }
        }
    }
    reached
}

/// Every collection holding PI is reached from an identity; every database dataset has a way
/// in.
fn reachable(r: &mut Report<'_>, edges: &[Edge]) {
    let reached = walk_reach(r.datasets, edges);
    let datasets = r.datasets;
    for (di, d) in datasets.iter().enumerate() {
        if d.external.is_some() {
            continue;
        }
        for (ci, c) in d.collections.iter().enumerate() {
            if !reached.contains(&(di, ci)) && c.fields.iter().any(|f| f.is_pi()) {
                r.error(
                    di,
                    c.pos,
                    "unreachable",
                    format!(
                        "collection `{}` holds PI, but no identity field (`fides_meta.identity`) or reference from one reaches it: its rows would never be found",
                        c.name
                    ),
                );
            }
        }
    }
}

/// References within a dataset form no cycle (Tarjan's strongly connected components): a
/// cycle leaves no order in which every row can be deleted or its reference cleared.
fn cycles(r: &mut Report<'_>, edges: &[Edge]) {
    let datasets = r.datasets;
    for (di, d) in datasets.iter().enumerate() {
        let n = d.collections.len();
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in edges {
            if e.from.0 == di
                && e.to.0 == di
                && e.from.1 != e.to.1
                && let Some(v) = next.get_mut(e.from.1)
            {
                v.push(e.to.1);
            }
        }
        for component in strongly_connected(&next) {
            if component.len() < 2 {
                continue;
            }
            let names: Vec<&str> = component
                .iter()
                .filter_map(|&c| d.collections.get(c).map(|c| c.name.as_str()))
                .collect();
            // Reported at each reference inside the cycle.
            for e in edges {
                if e.from.0 == di
                    && e.to.0 == di
                    && component.contains(&e.from.1)
                    && component.contains(&e.to.1)
                {
                    r.error(
                        di,
                        e.pos,
                        "reference_cycle",
                        format!(
                            "references form a cycle through {}: no order deletes their rows or clears their references; break it (a reference that is not a foreign key need not be declared)",
                            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// Tarjan's algorithm, iteratively; components with their members in ascending order.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = next.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut counter = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index.get(root).copied() != Some(usize::MAX) {
            continue;
        }
        // (node, position in its successor list)
        let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut i)) = frames.last_mut() {
            if *i == 0 && index.get(v).copied() == Some(usize::MAX) {
                set(&mut index, v, counter);
                set(&mut low, v, counter);
                counter += 1;
                stack.push(v);
                set(&mut on_stack, v, true);
            }
            let successors = next.get(v).map_or(&[][..], Vec::as_slice);
            if let Some(&w) = successors.get(*i) {
                *i += 1;
                if index.get(w).copied() == Some(usize::MAX) {
                    frames.push((w, 0));
                } else if on_stack.get(w).copied().unwrap_or(false) {
                    let l = low
                        .get(v)
                        .copied()
                        .unwrap_or(0)
                        .min(index.get(w).copied().unwrap_or(0));
                    set(&mut low, v, l);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                let l = low
                    .get(parent)
                    .copied()
                    .unwrap_or(0)
                    .min(low.get(v).copied().unwrap_or(0));
                set(&mut low, parent, l);
            }
            if low.get(v) == index.get(v) {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    set(&mut on_stack, w, false);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                out.push(component);
            }
        }
    }
    out
}

fn set<T>(v: &mut [T], i: usize, value: T) {
    if let Some(slot) = v.get_mut(i) {
        *slot = value;
    }
}

/// A collection whose rows erasure deletes may be referred to only by collections whose rows
/// go too, or whose referring field is cleared first (`erase: null`), and only by references
/// a walk follows from it (else the referring rows are never found).
fn deletions(r: &mut Report<'_>, edges: &[Edge]) {
    let datasets = r.datasets;
    for e in edges {
        if e.from == e.to || e.from.0 != e.to.0 {
            continue;
        }
        let (Some(child), Some(parent)) = (
            datasets
                .get(e.from.0)
                .and_then(|d| d.collections.get(e.from.1)),
            datasets.get(e.to.0).and_then(|d| d.collections.get(e.to.1)),
        ) else {
            continue;
        };
        if parent.delete_rows.is_none() {
            continue;
        }
        let Some(field) = child.fields.get(e.field) else {
            continue;
        };
        if child.delete_rows.is_none() && field.erase != Erase::Null {
            r.error(
                e.from.0,
                e.pos,
                "deletion_forbidden",
                format!(
                    "`{}.{}` refers to `{}`, whose rows erasure deletes, but `{}` keeps its rows and keeps the reference: delete them too (`steward: {{erase: delete_row}}`) or clear the field (`steward: {{erase: null}}`)",
                    child.name, field.name, parent.name, child.name
                ),
            );
        } else if e.direction == Direction::To {
            r.error(
                e.from.0,
                e.pos,
                "deletion_forbidden",
                format!(
                    "`{}.{}` refers to `{}`, whose rows erasure deletes, with `direction: to`: the rows of `{}` that refer to the subject's would never be found and would block the delete; let the walk follow it from `{}` (`direction: from`, or none)",
                    child.name, field.name, parent.name, child.name, parent.name
                ),
            );
        }
    }
}
