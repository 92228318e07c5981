//! A plan as a reviewer reads it: what, from where, to where, how much, and in which order.
//! File transfers are summed per object (a plan for 100,000 tablets stays readable); every
//! other task is listed with what it waits for.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Action, ObjectAction, Plan, Size};
use crate::catalog::JobKind;
use crate::output::human_bytes;

fn action_word(a: ObjectAction) -> &'static str {
    match a {
        ObjectAction::Backup => "back up",
        ObjectAction::Create => "create",
        ObjectAction::Overwrite => "OVERWRITE",
        ObjectAction::ReplacePartitions => "REPLACE PARTITIONS",
    }
}

/// The short summary `srbackup plan` prints.
pub fn summary(plan: &Plan) -> String {
    summary_of(plan, plan.tasks.len())
}

/// [`summary`] of a plan streamed to its file (held without its transfer groups): `tasks` is
/// how many the file holds.
pub fn summary_of(plan: &Plan, tasks: usize) -> String {
    let s = &plan.summary;
    let mut out = format!(
        "{} plan: {} objects, {} files, {}",
        match plan.kind {
            JobKind::Backup => "BACKUP",
            JobKind::Restore => "RESTORE",
        },
        s.objects,
        s.files,
        human_bytes(s.size.0)
    );
    if !plan.functions.is_empty() {
        let _ = write!(out, ", {} functions", plan.functions.len());
    }
    if !plan.external_catalogs.is_empty() {
        let _ = write!(out, ", {} external catalogs", plan.external_catalogs.len());
    }
    if let Some(p) = &plan.privileges {
        let _ = write!(
            out,
            ", privileges: {} users, {} roles, {} role grants, {} grants",
            p.users.len(),
            p.roles.len(),
            p.role_grants.len(),
            p.grants.len()
        );
    }
    if plan.kind == JobKind::Backup {
        let _ = write!(
            out,
            "; {} files ({}) already in repository {}, not sent; {} to send",
            s.already_in_repository,
            human_bytes(s.already_in_repository_size.0),
            plan.repository.name,
            human_bytes(s.size.0.saturating_sub(s.already_in_repository_size.0))
        );
    }
    let _ = write!(out, "; {tasks} tasks");
    out
}

/// The full review text.
pub fn explain(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", plan.statement);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  repository   {} ({})",
        plan.repository.name, plan.repository.location
    );
    let ts = match (&plan.snapshot.timestamp, plan.snapshot.newest) {
        (Some(t), true) => format!(" at {t} (the newest; no backup_timestamp given)"),
        (Some(t), false) => format!(" at {t}"),
        (None, _) => " (its timestamp is assigned when the job runs)".to_string(),
    };
    let _ = writeln!(out, "  snapshot     {}{ts}", plan.snapshot.label);
    match (&plan.database, &plan.target_database) {
        (Some(d), Some(t)) if d != t => {
            let _ = writeln!(out, "  database     {d} → restored as {t}");
        }
        (Some(d), _) => {
            let _ = writeln!(out, "  database     {d}");
        }
        _ => {}
    }
    let props: Vec<String> = plan
        .options
        .properties()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(out, "  properties   {}", props.join(", "));
    let _ = writeln!(out, "  fingerprint  {}", plan.fingerprint);
    let _ = writeln!(out);
    let _ = writeln!(out, "Objects ({}):", plan.objects.len());
    for o in &plan.objects {
        let target = match &o.target {
            Some(t) if t != &o.name => format!(" → {t}"),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "  {:<18} {}{target}: {}",
            o.kind.noun(),
            o.name,
            action_word(o.action)
        );
        if !o.partitions.is_empty() {
            let _ = write!(out, ", partitions {}", o.partitions.join(", "));
        }
        if !o.sync_mvs.is_empty() {
            let _ = write!(out, ", with sync MVs {}", o.sync_mvs.join(", "));
        }
        if o.files > 0 {
            let _ = write!(out, ", {} files, {}", o.files, human_bytes(o.size.0));
        }
        if let Some(r) = &o.inactive_reason {
            let _ = write!(out, "\n      left INACTIVE: {r}");
        }
        let _ = writeln!(out);
    }
    for f in &plan.functions {
        let target = match &f.target {
            Some(t) if t != &f.signature => format!(" → {t}"),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {:<18} {}{target}", "function", f.signature);
    }
    for c in &plan.external_catalogs {
        let target = match &c.target {
            Some(t) if t != &c.name => format!(" → {t}"),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {:<18} {}{target}", "external catalog", c.name);
    }
    // Who gets what, as a reviewer reads it (never a password hash: plans hold none).
    if let Some(p) = &plan.privileges {
        let holder = |h: &crate::repo::format::HolderEntry| match &h.host {
            Some(host) => format!("'{}'@'{host}'", h.name),
            None => format!("ROLE {}", h.name),
        };
        for u in &p.users {
            let _ = writeln!(out, "  {:<18} '{}'@'{}'", "user", u.name, u.host);
        }
        for r in &p.roles {
            let _ = writeln!(out, "  {:<18} {}", "role", r.name);
        }
        for g in &p.role_grants {
            let _ = writeln!(
                out,
                "  {:<18} {} TO {}",
                "role grant",
                g.role,
                holder(&g.holder)
            );
        }
        for g in &p.grants {
            let on = match (&g.db, &g.name) {
                (Some(d), Some(n)) => format!("{} {d}.{n}", g.kind),
                (None, Some(n)) => format!("{} {n}", g.kind),
                (Some(d), None) => format!("ALL {} IN {d}", g.kind),
                (None, None) => g.kind.clone(),
            };
            let _ = writeln!(
                out,
                "  {:<18} {} ON {on} TO {}{}",
                "grant",
                g.privilege,
                holder(&g.holder),
                if g.with_grant {
                    " WITH GRANT OPTION"
                } else {
                    ""
                }
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary(plan));
    let _ = writeln!(out);
    let _ = writeln!(out, "Tasks, in order:");
    // Transfers grouped per object; everything else one line each.
    let mut transfers: BTreeMap<(&str, &str), (u64, Size, u64)> = BTreeMap::new();
    let mut transfer_after: BTreeMap<(&str, &str), &[String]> = BTreeMap::new();
    let mut groups: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for t in &plan.tasks {
        let (object, files, stored) = match &t.action {
            Action::Uploads { object, files, .. } => (
                object,
                files.iter().map(|f| f.size).sum::<u64>(),
                files.iter().filter(|f| f.in_repository).count() as u64,
            ),
            Action::Downloads { object, files, .. } => {
                (object, files.iter().map(|f| f.size).sum::<u64>(), 0)
            }
            _ => continue,
        };
        let key = (t.action.kind(), object.as_str());
        let e = transfers.entry(key).or_default();
        e.0 += t.action.file_count() as u64;
        e.1.0 += files;
        e.2 += stored;
        *groups.entry(key).or_default() += 1;
        transfer_after.entry(key).or_insert(&t.after);
    }
    let mut printed_transfers = false;
    for t in &plan.tasks {
        if t.action.is_transfer() {
            if !printed_transfers {
                printed_transfers = true;
                for (key, (n, size, skipped)) in &transfers {
                    let (kind, object) = key;
                    let after = transfer_after[&(*kind, *object)].join(", ");
                    let skip = if *skipped > 0 {
                        format!(" ({skipped} already in the repository)")
                    } else {
                        String::new()
                    };
                    let db = plan
                        .target_database
                        .as_deref()
                        .or(plan.database.as_deref())
                        .map(super::id_part)
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  {kind}:{db}.{}.* — {n} files in {} groups, {}{skip}; after {after}",
                        super::id_part(object),
                        groups[key],
                        human_bytes(size.0)
                    );
                }
            }
            continue;
        }
        let after = if t.after.is_empty() {
            String::new()
        } else if t.after.len() > 3 {
            format!("; after {} tasks", t.after.len())
        } else {
            format!("; after {}", t.after.join(", "))
        };
        let detail = match &t.action {
            Action::Pin { .. } => format!(" — {} rowsets", plan.summary.files),
            Action::Commit { publish, .. } => {
                let items: Vec<String> = publish
                    .iter()
                    .map(|p| {
                        if p.partitions.is_empty() {
                            format!("{} ({})", p.target, action_word(p.action))
                        } else {
                            format!(
                                "{} ({} {})",
                                p.target,
                                action_word(p.action),
                                p.partitions.join(", ")
                            )
                        }
                    })
                    .collect();
                format!(" — one transaction: {}", items.join(", "))
            }
            Action::ActivateMaterializedView { active, reason, .. } => {
                if *active {
                    " — ACTIVE".to_string()
                } else {
                    format!(" — INACTIVE: {}", reason.as_deref().unwrap_or(""))
                }
            }
            _ => String::new(),
        };
        let _ = writeln!(out, "  {}{detail}{after}", t.id);
    }
    out
}
