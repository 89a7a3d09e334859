//! Policy versions (P29): published into the store with their text, digest, effective time and
//! classified diff; the one in force chosen by the clock on every call, so a version takes
//! effect at its time without a restart, on every server sharing the store. Notices (P30):
//! a material version opens a campaign that mails every subject with an address, batch by
//! batch, resumable. Acceptance (P30), and re-consent where a purpose is new or wider (P11).
//!
//! A compiled version lives as long as the process (versions are few: a handful a year), so
//! that `&Policy` borrowed from the vault stays valid while a newer one takes over.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::{Value as Json, json};
use steward_policy::{Capability, Change, Class, IdSet, Policy, PurposeId, Verb, diff};
use steward_store::{Op, PolicyEventRow, PolicyVersionRow, SubjectState};

use crate::clock::{Clock, rfc3339};
use crate::error::{Error, Missing};
use crate::vault::{Actor, SubjectId, Vault};

const DAY_MS: i64 = 86_400_000;

thread_local! {
    /// How many times this thread asked which version is in force (the benchmark's count of
    /// version checks per read).
    static LOOKUPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline]
fn counted() {
    LOOKUPS.with(|c| c.set(c.get().wrapping_add(1)));
}

/// How many times this thread has asked which policy version is in force.
pub fn lookups_on_this_thread() -> u64 {
    LOOKUPS.with(std::cell::Cell::get)
}
/// Subjects a campaign takes per unit of work.
pub const CAMPAIGN_BATCH: usize = 1_000;

/// Since when, and by which version, a purpose needs fresh consent (P11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// The version's effective time, Unix ms: consent must be given at or after it.
    pub since_ms: i64,
    /// The version.
    pub version: Arc<str>,
}

/// One published version, compiled.
pub struct Version {
    /// As stored.
    pub row: PolicyVersionRow,
    /// Compiled; lives as long as the process.
    pub policy: &'static Policy,
    /// Its differences from the version before (none for the first).
    pub changes: Vec<Change>,
    /// Users must be told before it takes effect: a material or needs-review change.
    pub material: bool,
    /// Per purpose index: the latest version up to this one that made it need fresh consent.
    gates: Vec<Option<Gate>>,
    /// The purposes that have a gate.
    gated: IdSet,
}

impl Version {
    /// Purposes this version itself makes need fresh consent.
    pub fn reconsent(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c.reconsent)
            .filter_map(|c| c.path.split('.').nth(1).map(String::from))
            .collect()
    }
}

/// Every version known, in publication order; once the newest has been seen in force, no
/// clock is read to pick it again (a version that took effect stays in force: a clock set
/// back does not bring the one before it back).
pub(crate) struct List {
    versions: Vec<Arc<Version>>,
    /// The oldest: in force until another is (a list is never empty).
    first: Arc<Version>,
    settled: std::sync::atomic::AtomicBool,
}

impl List {
    /// `None` for no versions: a list always has one in force.
    fn new(versions: Vec<Arc<Version>>) -> Option<List> {
        Some(List {
            first: Arc::clone(versions.first()?),
            versions,
            settled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The version in force: the newest once it has been seen in force, else by the clock.
    #[inline]
    fn in_force(&self, clock: &dyn Clock) -> &Arc<Version> {
        use std::sync::atomic::Ordering;
        if self.settled.load(Ordering::Acquire)
            && let Some(last) = self.versions.last()
        {
            return last;
        }
        let v = pick(&self.versions, clock.now_ms()).unwrap_or(&self.first);
        if self
            .versions
            .last()
            .is_some_and(|last| Arc::ptr_eq(last, v) && v.row.effective_ms <= clock.now_ms())
        {
            self.settled.store(true, Ordering::Release);
        }
        v
    }
}

/// Every version known, in publication order, and the clock that picks the one in force.
pub(crate) struct Versions {
    list: ArcSwap<List>,
    clock: Arc<dyn Clock>,
}

impl Versions {
    /// Before the store is read: the policy given, alone.
    pub(crate) fn provisional(policy: Policy, clock: Arc<dyn Clock>) -> Versions {
        let policy: &'static Policy = Box::leak(Box::new(policy));
        let row = PolicyVersionRow {
            version: policy.version.clone(),
            serial: 0,
            digest: digest(&policy.source),
            text: String::new(),
            effective_ms: date_ms(policy.effective),
            published_ms: 0,
            published_by: "system".into(),
            changes: "[]".into(),
        };
        let first = Arc::new(Version {
            row,
            policy,
            changes: Vec::new(),
            material: false,
            gates: Vec::new(),
            gated: IdSet::EMPTY,
        });
        Versions {
            list: ArcSwap::from_pointee(List {
                first: Arc::clone(&first),
                versions: vec![first],
                settled: std::sync::atomic::AtomicBool::new(false),
            }),
            clock,
        }
    }

    /// Every version, in publication order.
    pub(crate) fn all(&self) -> Vec<Arc<Version>> {
        self.list.load().versions.clone()
    }

    /// The version in force now.
    pub(crate) fn current(&self) -> Arc<Version> {
        counted();
        Arc::clone(self.list.load().in_force(self.clock.as_ref()))
    }

    /// Whether `purpose` needs fresh consent under the version in force, and since when.
    #[inline]
    pub(crate) fn gate(&self, purpose: PurposeId) -> Option<Gate> {
        counted();
        let list = self.list.load();
        let v = list.in_force(self.clock.as_ref());
        if !v.gated.contains(purpose.index()) {
            return None;
        }
        v.gates.get(purpose.index()).cloned().flatten()
    }

    /// Whether the store's versions (serial and digest, in order) are the ones known.
    fn known(&self, heads: &[(i64, String)]) -> bool {
        let list = self.list.load();
        heads.len() == list.versions.len()
            && heads
                .iter()
                .zip(list.versions.iter())
                .all(|((serial, digest), k)| *serial == k.row.serial && *digest == k.row.digest)
    }

    /// Rebuilds from the store's rows, keeping what is already compiled.
    fn update(&self, rows: &[PolicyVersionRow]) -> Result<(), Error> {
        let known = self.all();
        // What is compiled already is kept while it matches, in order (each version's gates
        // build on the one before it).
        let mut out: Vec<Arc<Version>> = Vec::with_capacity(rows.len());
        let mut reusing = true;
        for (i, row) in rows.iter().enumerate() {
            if reusing
                && let Some(k) = known.get(i)
                && k.row.serial == row.serial
                && k.row.digest == row.digest
            {
                out.push(Arc::clone(k));
                continue;
            }
            reusing = false;
            // The text is what was published: its digest matches and it still validates.
            let damaged = || {
                Error::Store(steward_store::StoreError::Corrupt(
                    "a stored policy version does not match its digest".into(),
                ))
            };
            if digest(&row.text) != row.digest {
                return Err(damaged());
            }
            let policy = Policy::parse(&row.text, &format!("policy version {}", row.version))
                .map_err(|_| damaged())?;
            out.push(Arc::new(compile(
                out.last().map(Arc::as_ref),
                row.clone(),
                policy,
            )));
        }
        // A store without versions (emptied behind Steward) leaves the known ones in force.
        if let Some(list) = List::new(out) {
            self.list.store(Arc::new(list));
        }
        Ok(())
    }
}

impl Deref for Versions {
    type Target = Policy;

    /// The policy in force now.
    #[inline]
    fn deref(&self) -> &Policy {
        counted();
        self.list.load().in_force(self.clock.as_ref()).policy
    }
}

/// The newest version in force at `now`; the first if none is yet (`None` for no versions).
fn pick(list: &[Arc<Version>], now: i64) -> Option<&Arc<Version>> {
    list.iter()
        .rev()
        .find(|v| v.row.effective_ms <= now)
        .or_else(|| list.first())
}

/// Compiles one version on top of the one before it.
fn compile(previous: Option<&Version>, row: PolicyVersionRow, policy: Policy) -> Version {
    let policy: &'static Policy = Box::leak(Box::new(policy));
    let changes = previous.map(|p| diff(p.policy, policy)).unwrap_or_default();
    let material = changes.iter().any(|c| c.class != Class::NotMaterial);
    let mut gates = previous.map(|p| p.gates.clone()).unwrap_or_default();
    gates.resize(policy.purposes.len(), None);
    let version: Arc<str> = Arc::from(row.version.as_str());
    for c in changes.iter().filter(|c| c.reconsent) {
        if let Some(id) = c
            .path
            .split('.')
            .nth(1)
            .and_then(|name| policy.purpose_id(name))
            && let Some(slot) = gates.get_mut(id.index())
        {
            *slot = Some(Gate {
                since_ms: row.effective_ms,
                version: Arc::clone(&version),
            });
        }
    }
    let mut gated = IdSet::EMPTY;
    for (i, g) in gates.iter().enumerate() {
        if g.is_some() {
            gated.insert(i);
        }
    }
    Version {
        row,
        policy,
        changes,
        material,
        gates,
        gated,
    }
}

/// A day as `YYYY-MM-DD` (an effective date).
pub fn parse_day(text: &str) -> Result<time::Date, Error> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| Error::Invalid("an effective date is `YYYY-MM-DD`".into()))
}

/// SHA-256 of a policy's text, lowercase hex.
fn digest(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// Midnight UTC of `date`, Unix ms.
fn date_ms(date: time::Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() * 1000
}

/// The date of `ms`, UTC.
pub(crate) fn ms_date(ms: i64) -> String {
    rfc3339(ms).get(..10).unwrap_or("").to_string()
}

/// Items of one kind keep their positions from one version to the next: callers hold ids
/// (a role in a signed-in session, a purpose in a consent) across the moment a version takes
/// over, and an id must name the same thing on both sides of it.
fn compatible(old: &Policy, new: &Policy) -> Result<(), Error> {
    fn kind<'a>(
        table: &str,
        old: impl Iterator<Item = &'a String>,
        new: &[&'a String],
    ) -> Result<(), Error> {
        for (i, name) in old.enumerate() {
            match new.get(i) {
                Some(n) if *n == name => {}
                Some(_) => {
                    return Err(Error::PolicyInvalid(format!(
                        "`{table}`: `{name}` must stay at position {} as in the version before; keep the items of the version before in their order and add new ones after them (to retire one, grant it to no role, or drop it only from the end)",
                        i + 1
                    )));
                }
                None => {}
            }
        }
        Ok(())
    }
    kind(
        "categories",
        old.categories.iter().map(|c| &c.name),
        &new.categories.iter().map(|c| &c.name).collect::<Vec<_>>(),
    )?;
    kind(
        "features",
        old.features.iter().map(|c| &c.name),
        &new.features.iter().map(|c| &c.name).collect::<Vec<_>>(),
    )?;
    kind(
        "purposes",
        old.purposes.iter().map(|c| &c.name),
        &new.purposes.iter().map(|c| &c.name).collect::<Vec<_>>(),
    )?;
    kind(
        "roles",
        old.roles.iter().map(|c| &c.name),
        &new.roles.iter().map(|c| &c.name).collect::<Vec<_>>(),
    )?;
    kind(
        "recipients",
        old.recipients.iter().map(|c| &c.name),
        &new.recipients.iter().map(|c| &c.name).collect::<Vec<_>>(),
    )
}

/// A published version as the API and the CLI show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VersionView {
    /// The version label.
    pub version: String,
    /// Publication order, from 1.
    pub serial: i64,
    /// SHA-256 of the text as published, hex.
    pub digest: String,
    /// When it takes effect (RFC 3339, UTC).
    pub effective_at: String,
    /// When it was published.
    pub published_at: String,
    /// `in_force`, `scheduled` or `superseded`.
    pub status: String,
    /// Users were (or are being) told before it took effect.
    pub material: bool,
    /// Purposes that need the fresh consent of subjects whose data predates it (P11).
    pub reconsent: Vec<String>,
    /// Its classified differences from the version before.
    pub changes: Vec<ChangeView>,
}

/// One classified difference, with what it means for consent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ChangeView {
    /// Where in the policy (`purposes.ad_models.reads`).
    pub path: String,
    /// `added`, `removed`, `widened`, `narrowed` or `changed`.
    pub what: String,
    /// In plain words (English; the notice says it in the subject's language).
    pub summary: String,
    /// `material`, `needs_review` or `not_material`.
    pub class: String,
    /// Whether it makes the purpose need fresh consent (P11).
    pub reconsent: bool,
}

fn change_view(c: &Change) -> ChangeView {
    ChangeView {
        path: c.path.clone(),
        what: c.verb.as_str().into(),
        summary: c.summary.clone(),
        class: c.class.as_str().into(),
        reconsent: c.reconsent,
    }
}

/// A version's full statement: its view, the text, and the plain-language explanation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VersionDetail {
    /// The version.
    #[serde(flatten)]
    pub view: VersionView,
    /// The statement in plain language, in the language asked for.
    pub statement: String,
    /// Its changes explained, in the language asked for.
    pub explained: Vec<String>,
    /// The policy file as published.
    pub text: String,
}

/// A notice of a material version, as served publicly.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Notice {
    /// `policy` (a new version) or `incident` (P22).
    pub kind: String,
    /// The version, or the incident's id.
    pub id: String,
    /// The version announced (empty for an incident).
    pub version: String,
    /// When it takes effect.
    pub effective_at: String,
    /// When it was published.
    pub published_at: String,
    /// Title, in the language asked for.
    pub title: String,
    /// What changes, in plain language, one line each.
    pub changes: Vec<String>,
    /// Purposes that will ask for consent again.
    pub reconsent: Vec<String>,
}

/// Acceptance counts of one version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Acceptance {
    /// The version.
    pub version: String,
    /// Subjects notified by email.
    pub notified: u64,
    /// Subjects shown the notice in the privacy centre.
    pub shown: u64,
    /// Accepted explicitly by the subject.
    pub accepted_explicit: u64,
    /// Accepted by staff on the subject's behalf.
    pub accepted_staff: u64,
    /// Accepted by continued use after the effective date.
    pub accepted_continued_use: u64,
}

/// How a campaign stands (kept in `meta` under `campaign:<version>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct Campaign {
    /// The last subject key handled, hex; empty before the first batch.
    pub cursor: String,
    /// Mails queued so far.
    pub enqueued: u64,
    /// Every subject has been handled.
    pub done: bool,
}

fn campaign_key(version: &str) -> String {
    format!("campaign:{version}")
}

impl Vault {
    /// Reads the store's versions; on a store without any, publishes the policy given as the
    /// first (it must be in force already). A policy given whose version the store does not
    /// have is published like any other (`steward policy publish`): its changes are
    /// classified and a material one must respect the notice period.
    pub(crate) fn load_versions(&self) -> Result<(), Error> {
        match self.load_versions_once() {
            // Another process starting on the same store published the same version first.
            Err(Error::Store(steward_store::StoreError::Conflict(_))) => self.load_versions_once(),
            done => done,
        }
    }

    fn load_versions_once(&self) -> Result<(), Error> {
        let given = self.policy.current();
        let rows = self.store.policy_versions()?;
        if rows.is_empty() {
            crate::vault::Vault::check_effective(given.policy, self.clock.now_ms())?;
            let row = PolicyVersionRow {
                serial: 1,
                text: given.policy.source.clone(),
                published_ms: self.clock.now_ms(),
                ..given.row.clone()
            };
            self.store.commit(
                vec![Op::PublishPolicy(row.clone())],
                vec![self.system_draft(
                    "policy.publish",
                    json!({ "version": row.version, "digest": row.digest, "effective": ms_date(row.effective_ms), "material": false, "changes": 0 }),
                )],
            )?;
            return self.policy.update(&[row]);
        }
        self.policy.update(&rows)?;
        match rows.iter().find(|r| r.version == given.row.version) {
            Some(r) if r.digest == given.row.digest => Ok(()),
            Some(_) => Err(Error::PolicyInvalid(format!(
                "version `{}` is published in this store with other text; give the changed policy a new version label",
                given.row.version
            ))),
            None => {
                let text = given.policy.source.clone();
                self.publish_policy(None, &text, None).map(|_| ())
            }
        }
    }

    /// Re-reads the versions another server may have published.
    /// Only each version's serial and digest are read unless something changed.
    pub fn refresh_versions(&self) -> Result<(), Error> {
        if self.policy.known(&self.store.policy_version_heads()?) {
            return Ok(());
        }
        self.policy.update(&self.store.policy_versions()?)
    }

    /// Re-reads the versions another server may have published, records the one in force
    /// when it changes (`policy.activate`, and a `policy.effective` webhook), and advances
    /// open notice campaigns for up to `budget`. The server calls it on every dispatcher
    /// pass; tests call it after moving the clock.
    pub fn policy_tick(&self, budget: std::time::Duration) -> Result<(), Error> {
        self.refresh_versions()?;
        self.note_activation()?;
        self.cases_tick(budget)?;
        let started = std::time::Instant::now();
        for v in self.policy.all().iter().filter(|v| v.material) {
            while started.elapsed() < budget {
                match self.campaign_step(&v.row.version, self.notice_batch)? {
                    Some(c) if !c.done => continue,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Records, once per version, which policy is in force (P29).
    pub(crate) fn note_activation(&self) -> Result<(), Error> {
        let v = self.policy.current();
        if self.store.meta("policy_version")?.as_deref() == Some(v.row.version.as_str()) {
            return Ok(());
        }
        let data = json!({ "version": v.row.version, "effective_at": rfc3339(v.row.effective_ms) });
        let mut ops = vec![Op::SetMeta {
            key: "policy_version".into(),
            value: v.row.version.clone(),
        }];
        Vault::enqueue(&mut ops, self.event_messages("policy.effective", data)?);
        self.store.commit(
            ops,
            vec![self.system_draft(
                "policy.activate",
                json!({ "version": v.row.version, "effective": ms_date(v.row.effective_ms) }),
            )],
        )?;
        Ok(())
    }

    /// Publishes a new version of the policy (P29): `actor` needs `policy.publish` (`None`:
    /// the operator, from the command line). `effective` overrides the file's date. Refused
    /// when the text does not validate, renumbers the version before it, takes effect before
    /// it, or — for a material or needs-review change — takes effect sooner than the notice
    /// period of the policy in force (`notice_period`, naming the earliest date). A material
    /// version opens a notice campaign (P30).
    pub fn publish_policy(
        &self,
        actor: Option<&Actor>,
        text: &str,
        effective: Option<time::Date>,
    ) -> Result<VersionView, Error> {
        if let Some(a) = actor {
            self.permit(a, Capability::PolicyPublish, None)?;
        }
        let policy = Policy::parse(text, "policy")
            .map_err(|d| Error::PolicyInvalid(format!("the policy does not validate:\n{d}")))?;
        let all = self.policy.all();
        let Some(previous) = all.last() else {
            return Err(Error::Internal("no policy version"));
        };
        if all.iter().any(|v| v.row.version == policy.version) {
            return Err(Error::Conflict(format!(
                "version `{}` is already published; give the new text a new version label",
                policy.version
            )));
        }
        let effective_ms = date_ms(effective.unwrap_or(policy.effective));
        if effective_ms < previous.row.effective_ms {
            return Err(Error::PolicyInvalid(format!(
                "a version takes effect no earlier than the one before it (`{}`, {})",
                previous.row.version,
                ms_date(previous.row.effective_ms)
            )));
        }
        compatible(previous.policy, &policy)?;
        let now = self.clock.now_ms();
        let row = PolicyVersionRow {
            version: policy.version.clone(),
            serial: previous.row.serial + 1,
            digest: digest(text),
            text: text.to_string(),
            effective_ms,
            published_ms: now,
            published_by: Vault::actor_id(actor),
            changes: String::new(),
        };
        let version = compile(Some(previous), row, policy);
        let days = self.policy.deadlines.change_notice_days;
        let earliest_ms = now.saturating_add(i64::from(days) * DAY_MS);
        if version.material && effective_ms < earliest_ms {
            // The first midnight (UTC) at or after the end of the notice period.
            let earliest =
                ms_date(earliest_ms + DAY_MS - 1 - (earliest_ms + DAY_MS - 1).rem_euclid(DAY_MS));
            let e = Error::NoticePeriod {
                version: version.row.version.clone(),
                days,
                earliest,
            };
            return Err(match actor {
                Some(a) => self.refuse(a, "policy.publish", None, "", String::new(), e),
                None => e,
            });
        }
        let changes: Vec<ChangeView> = version.changes.iter().map(change_view).collect();
        let row = PolicyVersionRow {
            changes: serde_json::to_string(&changes)
                .map_err(|_| Error::Internal("changes do not serialise"))?,
            ..version.row.clone()
        };
        let reconsent = version.reconsent();
        let detail = json!({
            "version": row.version,
            "digest": row.digest,
            "effective": ms_date(effective_ms),
            "material": version.material,
            "changes": changes.len(),
            "reconsent": reconsent,
        });
        let mut ops = vec![Op::PublishPolicy(row.clone())];
        if version.material {
            ops.push(Op::SetMeta {
                key: campaign_key(&row.version),
                value: serde_json::to_string(&Campaign::default())
                    .map_err(|_| Error::Internal("campaign does not serialise"))?,
            });
        }
        Vault::enqueue(
            &mut ops,
            self.event_messages(
                "policy.published",
                json!({ "version": row.version, "effective_at": rfc3339(effective_ms), "material": version.material, "reconsent": reconsent }),
            )?,
        );
        let draft = self.managed(actor, "policy.publish", detail);
        self.store.commit(ops, vec![draft])?;
        self.policy.update(&self.store.policy_versions()?)?;
        tracing::info!(version = %row.version, material = version.material, "policy version published");
        self.version_view(&row.version)
    }

    /// What one look at the version in force costs, ns: the clock, the list, the choice, and
    /// the purpose's re-consent gate (the benchmark multiplies it by the looks per read).
    pub fn version_check_ns(&self, n: u32) -> f64 {
        let purpose = self.policy.purpose_id("provide_service");
        let started = std::time::Instant::now();
        for _ in 0..n.max(1) {
            std::hint::black_box(self.policy.version.len());
            if let Some(p) = purpose {
                std::hint::black_box(self.policy.gate(std::hint::black_box(p)));
            }
        }
        started.elapsed().as_nanos() as f64 / (2.0 * f64::from(n.max(1)))
    }

    /// Checks that `actor` may publish versions and read their acceptance (`policy.publish`).
    pub fn permit_policy(&self, actor: &Actor) -> Result<(), Error> {
        self.permit(actor, Capability::PolicyPublish, None)
    }

    /// Every published version, oldest first.
    pub fn versions(&self) -> Vec<VersionView> {
        let all = self.policy.all();
        all.iter().map(|v| self.view_of(&all, v)).collect()
    }

    fn view_of(&self, all: &[Arc<Version>], v: &Version) -> VersionView {
        let now = self.clock.now_ms();
        let current = pick(all, now).map_or(v.row.serial, |c| c.row.serial);
        let status = if v.row.serial == current {
            "in_force"
        } else if v.row.effective_ms > now {
            "scheduled"
        } else {
            "superseded"
        };
        VersionView {
            version: v.row.version.clone(),
            serial: v.row.serial,
            digest: v.row.digest.clone(),
            effective_at: rfc3339(v.row.effective_ms),
            published_at: rfc3339(v.row.published_ms),
            status: status.into(),
            material: v.material,
            reconsent: v.reconsent(),
            changes: v.changes.iter().map(change_view).collect(),
        }
    }

    fn version_view(&self, version: &str) -> Result<VersionView, Error> {
        let all = self.policy.all();
        all.iter()
            .find(|v| v.row.version == version)
            .map(|v| self.view_of(&all, v))
            .ok_or(Error::NotFound(Missing::Version))
    }

    /// One version with its text and plain-language statement, its changes explained in
    /// `lang` (`zh-CN` or `en`; else the policy's language).
    pub fn version_detail(
        &self,
        version: &str,
        lang: Option<&str>,
    ) -> Result<VersionDetail, Error> {
        let all = self.policy.all();
        let v = all
            .iter()
            .find(|v| v.row.version == version)
            .ok_or(Error::NotFound(Missing::Version))?;
        let lang = self.language_or_default(lang);
        Ok(VersionDetail {
            view: self.view_of(&all, v),
            statement: self.statement(v.policy, &lang)?,
            explained: self.explain_changes(v, &lang)?,
            text: v.row.text.clone(),
        })
    }

    /// What one version changed from the one before, explained in `lang` (the material and
    /// fresh-consent changes, as its notice says them), without rendering its statement.
    pub fn version_changes(&self, version: &str, lang: Option<&str>) -> Result<Vec<String>, Error> {
        let all = self.policy.all();
        let v = all
            .iter()
            .find(|v| v.row.version == version)
            .ok_or(Error::NotFound(Missing::Version))?;
        self.explain_changes(v, &self.language_or_default(lang))
    }

    fn language_or_default(&self, lang: Option<&str>) -> String {
        match lang {
            Some(l) if steward_policy::LANGUAGES.contains(&l) => l.to_string(),
            _ => self.policy.language.clone(),
        }
    }

    /// A version's changes in plain language, one line each.
    pub(crate) fn explain_changes(&self, v: &Version, lang: &str) -> Result<Vec<String>, Error> {
        let c = &self.catalogue;
        v.changes
            .iter()
            .filter(|ch| ch.class != Class::NotMaterial || ch.reconsent)
            .map(|ch| {
                let mut parts = ch.path.splitn(3, '.');
                let table = parts.next().unwrap_or("");
                let name = parts.next().unwrap_or("");
                let field = parts.next().unwrap_or("");
                let table_text = c
                    .text(lang, &format!("change-table-{table}"), None, &[])
                    .unwrap_or_else(|_| table.to_string());
                let field_text = if field.is_empty() {
                    String::new()
                } else {
                    c.text(lang, &format!("change-field-{field}"), None, &[])
                        .unwrap_or_else(|_| field.to_string())
                };
                // `policy.regions`, `deadlines.request_days`: the second part is the thing.
                let id = match (ch.verb, field.is_empty()) {
                    (Verb::Added | Verb::Removed, _) | (_, false) => {
                        format!("change-{}", ch.verb.as_str())
                    }
                    (_, true) => format!("change-{}-item", ch.verb.as_str()),
                };
                let mut line = c.text(
                    lang,
                    &id,
                    None,
                    &[
                        ("table", table_text.as_str()),
                        ("name", name),
                        ("field", field_text.as_str()),
                    ],
                )?;
                if ch.reconsent {
                    line.push_str(&c.text(lang, "change-reconsent", None, &[])?);
                }
                Ok(line)
            })
            .collect()
    }

    /// The notices of material versions not yet in force, and of those that took effect in
    /// the last `change_notice_days`, newest first, in `lang` (P30). Public.
    pub fn notices(&self, lang: Option<&str>) -> Result<Vec<Notice>, Error> {
        let lang = self.language_or_default(lang);
        let now = self.clock.now_ms();
        let window = i64::from(self.policy.deadlines.change_notice_days) * DAY_MS;
        let all = self.policy.all();
        let mut out = Vec::new();
        for v in all.iter().rev().filter(|v| v.material) {
            if v.row.effective_ms.saturating_add(window) < now {
                continue;
            }
            out.push(self.notice_of(v, &lang)?);
        }
        out.extend(self.incident_notices(&lang)?);
        Ok(out)
    }

    fn notice_of(&self, v: &Version, lang: &str) -> Result<Notice, Error> {
        let effective = ms_date(v.row.effective_ms);
        Ok(Notice {
            kind: "policy".into(),
            id: v.row.version.clone(),
            version: v.row.version.clone(),
            effective_at: rfc3339(v.row.effective_ms),
            published_at: rfc3339(v.row.published_ms),
            title: self.catalogue.text(
                lang,
                "policy-notice",
                None,
                &[
                    ("version", v.row.version.as_str()),
                    ("effective", effective.as_str()),
                    ("provider", self.policy.name.as_str()),
                ],
            )?,
            changes: self.explain_changes(v, lang)?,
            reconsent: v.reconsent(),
        })
    }

    /// The notice mail of `version` for a subject writing in `lang`: title and text.
    pub(crate) fn notice_mail(&self, version: &str, lang: &str) -> Result<(String, String), Error> {
        let all = self.policy.all();
        let v = all
            .iter()
            .find(|v| v.row.version == version)
            .ok_or(Error::NotFound(Missing::Version))?;
        let notice = self.notice_of(v, lang)?;
        let effective = ms_date(v.row.effective_ms);
        let lines = notice
            .changes
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        let body = self.catalogue.text(
            lang,
            "policy-notice",
            Some("body"),
            &[
                ("version", version),
                ("effective", effective.as_str()),
                ("changes", lines.as_str()),
                ("provider", self.policy.name.as_str()),
            ],
        )?;
        Ok((notice.title, body))
    }

    /// One batch of a version's notice campaign (P30): the next `batch` subjects holding an
    /// email address, each active one given a `policy.notice` mail through the outbox, the
    /// cursor moved in the same unit of work — so a crash resumes where the last batch
    /// committed, and a batch is never queued twice. When every subject is handled, a
    /// `notice.sent` webhook goes out. `None` when the version has no campaign.
    pub fn campaign_step(&self, version: &str, batch: usize) -> Result<Option<Campaign>, Error> {
        let key = campaign_key(version);
        let Some(stored) = self.store.meta(&key)? else {
            return Ok(None);
        };
        let mut c: Campaign =
            serde_json::from_str(&stored).map_err(|_| Error::Internal("a campaign is damaged"))?;
        if c.done {
            return Ok(Some(c));
        }
        let Some(category) = self.address_category() else {
            c.done = true;
            self.finish_campaign(version, &key, &c, Vec::new())?;
            return Ok(Some(c));
        };
        let after: Option<[u8; 16]> = match c.cursor.as_str() {
            "" => None,
            hex_key => Some(
                hex::decode(hex_key)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or(Error::Internal("a campaign's cursor is damaged"))?,
            ),
        };
        let page = self
            .store
            .subjects_with_category(&category, after.as_ref(), batch)?;
        let states = self.store.subjects(&page)?;
        let effective_at = self
            .policy
            .all()
            .iter()
            .find(|v| v.row.version == version)
            .map(|v| rfc3339(v.row.effective_ms))
            .unwrap_or_default();
        let mut rows = Vec::with_capacity(page.len());
        for (key16, state) in page.iter().zip(&states) {
            if state
                .as_ref()
                .is_some_and(|s| s.state == SubjectState::Active)
            {
                rows.push(self.subject_mail(
                    "policy.notice",
                    SubjectId(*key16),
                    json!({ "version": version, "effective_at": effective_at }),
                )?);
            }
        }
        c.enqueued += rows.len() as u64;
        if let Some(last) = page.last() {
            c.cursor = hex::encode(last);
        }
        if page.len() < batch {
            c.done = true;
            self.finish_campaign(version, &key, &c, rows)?;
            return Ok(Some(c));
        }
        let queued = rows.len();
        let mut ops = Vec::new();
        Vault::enqueue(&mut ops, rows);
        ops.push(Op::SetMeta {
            key,
            value: serde_json::to_string(&c).map_err(|_| Error::Internal("campaign"))?,
        });
        self.store.commit(
            ops,
            vec![self.system_draft(
                "notice.enqueue",
                json!({ "version": version, "queued": queued, "total": c.enqueued }),
            )],
        )?;
        Ok(Some(c))
    }

    fn finish_campaign(
        &self,
        version: &str,
        key: &str,
        c: &Campaign,
        rows: Vec<steward_store::OutboxRow>,
    ) -> Result<(), Error> {
        let queued = rows.len();
        let mut ops = Vec::new();
        Vault::enqueue(&mut ops, rows);
        Vault::enqueue(
            &mut ops,
            self.event_messages(
                "notice.sent",
                json!({ "version": version, "subjects": c.enqueued }),
            )?,
        );
        ops.push(Op::SetMeta {
            key: key.to_string(),
            value: serde_json::to_string(c).map_err(|_| Error::Internal("campaign"))?,
        });
        self.store.commit(
            ops,
            vec![
                self.system_draft(
                    "notice.enqueue",
                    json!({ "version": version, "queued": queued, "total": c.enqueued }),
                ),
                self.system_draft(
                    "notice.sent",
                    json!({ "version": version, "subjects": c.enqueued }),
                ),
            ],
        )?;
        tracing::info!(
            version,
            subjects = c.enqueued,
            "notice campaign queued every mail"
        );
        Ok(())
    }

    /// How a version's campaign stands, if it has one.
    pub fn campaign(&self, version: &str) -> Result<Option<Campaign>, Error> {
        self.store
            .meta(&campaign_key(version))?
            .map(|s| serde_json::from_str(&s).map_err(|_| Error::Internal("a campaign is damaged")))
            .transpose()
    }

    /// The category that holds subjects' email addresses (a lookup category of taxonomy
    /// `user.contact.email`), if the policy has one.
    pub(crate) fn address_category(&self) -> Option<String> {
        self.policy
            .categories
            .iter()
            .find(|c| c.lookup && c.taxonomy == "user.contact.email")
            .map(|c| c.name.clone())
    }

    /// The op recording that a subject was told of `version` (`notified` by email, `shown`
    /// in the privacy centre).
    pub(crate) fn told(&self, subject: SubjectId, version: &str, event: &str, how: &str) -> Op {
        Op::PolicyEvents(vec![PolicyEventRow {
            subject: subject.0,
            version: version.into(),
            event: event.into(),
            how: how.into(),
            at_ms: self.clock.now_ms(),
        }])
    }

    /// The op recording acceptance by continued use (P30), for a subject's own act: only
    /// once the version in force took effect, and only for a version none of whose changes
    /// needs consent (those rest on the contract; consent is asked for, never assumed).
    pub(crate) fn continued_use(&self, subject: SubjectId) -> Option<Op> {
        let v = self.policy.current();
        (v.row.serial > 1 && v.row.effective_ms <= self.clock.now_ms() && v.reconsent().is_empty())
            .then(|| self.told(subject, &v.row.version, "accepted", "continued_use"))
    }

    /// Acceptance of a version (P30): by the subject (`actor` `None`), or by staff on their
    /// behalf with a reason (`policy.publish`; the reason is kept sealed under the subject's
    /// key, its digest in the log). `version` defaults to the one in force.
    pub fn accept_policy(
        &self,
        actor: Option<&Actor>,
        subject: SubjectId,
        version: Option<&str>,
        reason: Option<&str>,
    ) -> Result<String, Error> {
        let version = match version {
            Some(v) => self
                .policy
                .all()
                .iter()
                .find(|x| x.row.version == v)
                .map(|x| x.row.version.clone())
                .ok_or(Error::NotFound(Missing::Version))?,
            None => self.policy.current().row.version.clone(),
        };
        match self.subject_row(&subject.0)? {
            Some(row) if row.state == SubjectState::Erased => return Err(Error::SubjectErased),
            Some(_) => {}
            None => return Err(Error::SubjectNotFound),
        }
        let by_subject = crate::selfservice::subject_actor();
        let (who, how) = match actor {
            Some(a) => {
                self.permit(a, Capability::PolicyPublish, Some(subject))?;
                if reason.is_none_or(|r| r.trim().is_empty()) {
                    return Err(Error::Invalid(
                        "staff accepting for a subject give the reason (`reason`)".into(),
                    ));
                }
                (a, "staff")
            }
            None => (&by_subject, "explicit"),
        };
        let mut detail = serde_json::Map::new();
        detail.insert("version".into(), json!(version));
        detail.insert("how".into(), json!(how));
        if actor.is_some() {
            let r = reason.unwrap_or("");
            if r.len() > crate::MAX_NOTE {
                return Err(Error::Invalid(format!(
                    "a reason is at most {} bytes",
                    crate::MAX_NOTE
                )));
            }
            detail.insert(
                "reason_digest".into(),
                json!(self.text_digest("policy-accept", r)),
            );
            detail.insert(
                "reason_sealed".into(),
                json!(self.seal_text(subject, "policy-accept", &version, r)?),
            );
        }
        self.store.commit(
            vec![self.told(subject, &version, "accepted", how)],
            vec![self.act(who, "policy.accept", Some(subject), Json::Object(detail))],
        )?;
        Ok(version)
    }

    /// Acceptance counts per version (`steward policy acceptance`).
    pub fn acceptance(&self, version: &str) -> Result<Acceptance, Error> {
        if !self.policy.all().iter().any(|v| v.row.version == version) {
            return Err(Error::NotFound(Missing::Version));
        }
        let mut a = Acceptance {
            version: version.into(),
            notified: 0,
            shown: 0,
            accepted_explicit: 0,
            accepted_staff: 0,
            accepted_continued_use: 0,
        };
        for (event, how, n) in self.store.policy_event_counts(version)? {
            match (event.as_str(), how.as_str()) {
                ("notified", _) => a.notified += n,
                ("shown", _) => a.shown += n,
                ("accepted", "explicit") => a.accepted_explicit += n,
                ("accepted", "staff") => a.accepted_staff += n,
                ("accepted", _) => a.accepted_continued_use += n,
                _ => {}
            }
        }
        Ok(a)
    }

    /// Records that a subject was shown the notices (the privacy centre), and returns them.
    pub fn self_notices(&self, subject: SubjectId) -> Result<Vec<Notice>, Error> {
        let lang = self.language_of(subject)?;
        let notices = self.notices(Some(&lang))?;
        let mut ops: Vec<Op> = notices
            .iter()
            .filter(|n| n.kind == "policy")
            .map(|n| self.told(subject, &n.version, "shown", "page"))
            .collect();
        ops.extend(self.continued_use(subject));
        if !ops.is_empty() {
            let versions: Vec<&str> = notices
                .iter()
                .filter(|n| n.kind == "policy")
                .map(|n| n.version.as_str())
                .collect();
            self.store.commit(
                ops,
                vec![self.act(
                    &crate::selfservice::subject_actor(),
                    "notice.shown",
                    Some(subject),
                    json!({ "versions": versions }),
                )],
            )?;
        }
        Ok(notices)
    }
}
