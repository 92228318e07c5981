//! Schedules (CREATE SCHEDULE … RECURRING, `server::scheduler`) under an injected clock: a
//! schedule fires when due and not before, survives a restart (a new scheduler on the same
//! catalog), skips a due time while its previous run is going, catches up once after
//! downtime, applies its retention after a successful run, and records every run.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{fails, hub_with_local_repo, rows, run};
use srbackup::catalog::RunState;
use srbackup::exec::progress::Silent;
use srbackup::server::scheduler::Scheduler;
use srbackup::session::Session;
use srbackup::session::schedules::parse_time;

fn next_run(s: &mut Session, name: &str) -> DateTime<Utc> {
    let schedule = s
        .engine()
        .catalog()
        .view()
        .schedule(name)
        .unwrap()
        .expect("schedule");
    parse_time(schedule.next_run.as_deref().expect("next run")).unwrap()
}

async fn snapshots(s: &mut Session) -> Vec<String> {
    let rs = rows(s, "SHOW SNAPSHOT ON r").await;
    // One row per label, its timestamps one per line.
    rs.rows
        .iter()
        .flat_map(|r| {
            let label = r[0].clone().unwrap();
            r[1].clone()
                .unwrap()
                .lines()
                .map(|t| format!("{label}/{t}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_fires_once_per_due_time_survives_restarts_skips_overlaps_and_catches_up_once() {
    let (dir, _repo, mut s) = hub_with_local_repo().await;
    let cluster = dir.path().join("c");
    run(
        &mut s,
        "CREATE SCHEDULE nightly FOR BACKUP DATABASE sr_hub SNAPSHOT nightly TO r \
         RECURRING '0 1 * * *' WITH RETENTION 'keep-last=2'",
    )
    .await;
    let due = next_run(&mut s, "nightly");
    assert_eq!(due.format("%H:%M:%S").to_string(), "01:00:00");

    let mut scheduler = Scheduler::open(&cluster).unwrap();
    // Not yet due: nothing happens.
    let tick = scheduler.tick(due - Duration::seconds(1)).await.unwrap();
    assert!(tick.started.is_empty(), "{tick:?}");

    // Due: one BACKUP job, named by the scheduler's clock.
    let tick = scheduler.tick(due).await.unwrap();
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    let first = tick.started[0].1;
    // The same instant again (a second tick, a second scheduler): nothing more.
    let again = scheduler.tick(due).await.unwrap();
    assert!(again.started.is_empty(), "{again:?}");
    let mut other = Scheduler::open(&cluster).unwrap();
    assert!(other.tick(due).await.unwrap().started.is_empty());

    // The next day comes while the first job has not run: skipped, not started.
    let day2 = next_run(&mut s, "nightly");
    assert_eq!(day2, due + Duration::days(1));
    let tick = scheduler.tick(day2).await.unwrap();
    assert!(tick.started.is_empty(), "{tick:?}");
    assert_eq!(tick.skipped, vec!["nightly".to_string()]);

    // The job runs; the next tick closes its run as SUCCESS.
    let outcome = srbackup::exec::run_job(s.engine(), first, &Silent)
        .await
        .unwrap();
    assert!(outcome.succeeded(), "{}", outcome.summary());
    assert_eq!(
        outcome.timestamp.as_deref().map(|t| &t[..19]),
        Some(due.format("%Y-%m-%d-%H-%M-%S").to_string().as_str())
    );
    let tick = scheduler.tick(day2).await.unwrap();
    assert_eq!(tick.closed.len(), 1, "{tick:?}");
    assert_eq!(tick.closed[0].1, RunState::Success);

    // A restart: new session and scheduler on the same catalog. The server was down for a
    // week: the schedule fires once, for the time it missed first, then after *now*.
    drop(scheduler);
    drop(other);
    drop(s);
    let mut s = Session::open(&cluster).unwrap();
    let mut scheduler = Scheduler::open(&cluster).unwrap();
    let later = day2 + Duration::days(7) + Duration::hours(5);
    let tick = scheduler.tick(later).await.unwrap();
    assert_eq!(tick.started.len(), 1, "caught up more than once: {tick:?}");
    let after = next_run(&mut s, "nightly");
    assert!(
        after > later && after - later <= Duration::days(1),
        "{after}"
    );
    let runs = s.engine().catalog().view().schedule_runs(None).unwrap();
    assert_eq!(
        runs[0].scheduled_for,
        srbackup::session::schedules::time_text(day2 + Duration::days(1))
    );

    // Two more successful runs: retention keeps the last 2 of the label.
    let job = tick.started[0].1;
    assert!(
        srbackup::exec::run_job(s.engine(), job, &Silent)
            .await
            .unwrap()
            .succeeded()
    );
    scheduler.tick(later).await.unwrap();
    let tick = scheduler.tick(after).await.unwrap();
    let job = tick.started[0].1;
    assert!(
        srbackup::exec::run_job(s.engine(), job, &Silent)
            .await
            .unwrap()
            .succeeded()
    );
    let tick = scheduler.tick(after).await.unwrap();
    assert_eq!(tick.closed.len(), 1);
    let kept = snapshots(&mut s).await;
    assert_eq!(kept.len(), 2, "keep-last=2 left {kept:?}");

    // Every run is in information_schema.task_runs, newest first, with what retention did.
    let history = rows(
        &mut s,
        "SELECT TASK_NAME, STATE, EXTRA_MESSAGE FROM information_schema.task_runs",
    )
    .await;
    let states: Vec<&str> = history
        .rows
        .iter()
        .map(|r| r[1].as_deref().unwrap())
        .collect();
    // Newest first: the run after the catch-up, the catch-up, the skipped day, the first.
    assert_eq!(states, ["SUCCESS", "SUCCESS", "SKIPPED", "SUCCESS"]);
    let newest = history.rows[0][2].as_deref().unwrap();
    assert!(
        newest.contains("retention keep-last=2: forgot 1 snapshots"),
        "{newest}"
    );
    let tasks = rows(
        &mut s,
        "SELECT TASK_NAME, SCHEDULE, `DATABASE` FROM information_schema.tasks",
    )
    .await;
    assert_eq!(tasks.rows[0][0].as_deref(), Some("nightly"));
    assert_eq!(tasks.rows[0][2].as_deref(), Some("sr_hub"));

    // PAUSE: a due time passes without a run; RESUME: the next run is after now.
    run(&mut s, "PAUSE SCHEDULE nightly").await;
    let paused = rows(&mut s, "SHOW SCHEDULES").await;
    assert_eq!(paused.get(0, "State"), Some("PAUSED"));
    assert_eq!(paused.get(0, "NextRun"), None);
    let tick = scheduler.tick(after + Duration::days(30)).await.unwrap();
    assert!(
        tick.started.is_empty() && tick.skipped.is_empty(),
        "{tick:?}"
    );
    run(&mut s, "RESUME SCHEDULE nightly").await;
    assert!(next_run(&mut s, "nightly") > Utc::now());

    // DROP: gone from SHOW SCHEDULES, its runs stay in the history.
    run(&mut s, "DROP SCHEDULE nightly").await;
    assert!(rows(&mut s, "SHOW SCHEDULES").await.rows.is_empty());
    let history = rows(&mut s, "SELECT COUNT(*) FROM information_schema.task_runs").await;
    assert_eq!(history.rows[0][0].as_deref(), Some("4"));
    run(&mut s, "DROP SCHEDULE IF EXISTS nightly").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_cannot_start_fails_with_its_reason_and_the_schedule_goes_on() {
    let (dir, _repo, mut s) = hub_with_local_repo().await;
    let cluster = dir.path().join("c");
    run(
        &mut s,
        "CREATE SCHEDULE hourly FOR BACKUP DATABASE sr_hub SNAPSHOT hourly TO r ON (TABLE sr_event) \
         RECURRING '@hourly'",
    )
    .await;
    let due = next_run(&mut s, "hourly");
    // The table the schedule backs up is dropped before it fires.
    run(&mut s, "DROP TABLE sr_hub.sr_event FORCE").await;
    let mut scheduler = Scheduler::open(&cluster).unwrap();
    let tick = scheduler.tick(due).await.unwrap();
    assert!(tick.started.is_empty());
    assert_eq!(tick.failed.len(), 1, "{tick:?}");
    assert!(tick.failed[0].1.contains("sr_event"), "{:?}", tick.failed);
    let runs = s.engine().catalog().view().schedule_runs(None).unwrap();
    assert_eq!(runs[0].state, RunState::Failed);
    // Rescheduled: the next hour.
    assert_eq!(next_run(&mut s, "hourly"), due + Duration::hours(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_checked_when_created() {
    let (_dir, _repo, mut s) = hub_with_local_repo().await;
    let start = "CREATE SCHEDULE x FOR BACKUP DATABASE sr_hub SNAPSHOT x TO";
    for (rest, expected) in [
        ("r RECURRING '0 1 * *'", "not a crontab"),
        ("r RECURRING '0 0 30 2 *'", "never matches"),
        ("r RECURRING '@reboot'", "names no time"),
        (
            "r RECURRING '@daily' WITH RETENTION 'keep-forever=1'",
            "not a retention policy",
        ),
        (
            "nowhere RECURRING '@daily'",
            "repository nowhere does not exist",
        ),
        ("r ON (TABLE nope) RECURRING '@daily'", "nope"),
    ] {
        let err = fails(&mut s, &format!("{start} {rest}")).await;
        assert!(err.contains(expected), "{rest}: {err}");
    }
    // Retention on a backup of external catalogs only would apply to every database's
    // snapshots of the label (found by review): refused.
    let catalogs = fails(
        &mut s,
        "CREATE SCHEDULE y FOR BACKUP EXTERNAL CATALOG (hive) SNAPSHOT y TO r RECURRING '@daily' WITH RETENTION 'keep-last=1'",
    )
    .await;
    assert!(
        catalogs.contains("no database to apply retention"),
        "{catalogs}"
    );
    assert!(rows(&mut s, "SHOW SCHEDULES").await.rows.is_empty());

    run(
        &mut s,
        "CREATE SCHEDULE x FOR BACKUP DATABASE sr_hub SNAPSHOT x TO r RECURRING '@daily'",
    )
    .await;
    let twice = fails(
        &mut s,
        "CREATE SCHEDULE x FOR BACKUP DATABASE sr_hub SNAPSHOT x TO r RECURRING '@daily'",
    )
    .await;
    assert!(twice.contains("already exists"), "{twice}");
    run(
        &mut s,
        "CREATE SCHEDULE IF NOT EXISTS x FOR BACKUP DATABASE sr_hub SNAPSHOT x TO r RECURRING '@daily'",
    )
    .await;
    let unknown = fails(&mut s, "PAUSE SCHEDULE y").await;
    assert!(unknown.contains("schedule y does not exist"), "{unknown}");
}

/// `srbackup serve` fires by its clock (a test build reads it from SRBACKUP_SCHEDULER_CLOCK),
/// keeps its schedules across a restart, and after eight days down runs a missed schedule once.
#[test]
fn the_server_fires_by_its_clock_and_catches_up_once_after_a_restart() {
    use common::server::{Server, mariadb};
    use std::time::{Duration as Wait, Instant};

    let c = common::cli::cluster();
    let clock = c.path.parent().unwrap().join("clock");
    std::fs::write(&clock, "2030-01-01 00:00:00").unwrap();
    let env = [("SRBACKUP_SCHEDULER_CLOCK", clock.to_str().unwrap())];
    let runs = |port: u16| -> Vec<String> {
        let r = mariadb(
            port,
            "SELECT STATE, EXTRA_MESSAGE FROM information_schema.task_runs",
        );
        assert!(r.ok, "{}", r.err);
        r.out
            .lines()
            .filter(|l| l.contains("scheduled for"))
            .map(str::to_string)
            .collect()
    };
    let wait_for = |port: u16, n: usize| -> Vec<String> {
        let start = Instant::now();
        loop {
            let got = runs(port);
            if got.iter().filter(|l| l.contains("SUCCESS")).count() >= n {
                return got;
            }
            assert!(
                start.elapsed() < Wait::from_secs(120),
                "no {n} successful runs: {got:?}"
            );
            std::thread::sleep(Wait::from_millis(200));
        }
    };

    std::fs::write(
        c.path.join("srbackup.conf"),
        common::server::root_conf() + &common::server::allowed(&c.path),
    )
    .unwrap();
    let server = Server::start_with_env(&c.path, &env);
    let created = mariadb(
        server.port,
        "CREATE SCHEDULE nightly FOR BACKUP DATABASE sr_hub SNAPSHOT nightly TO r RECURRING '0 1 * * *'",
    );
    assert!(created.ok, "{}", created.err);
    // Before 01:00 by the server's clock nothing runs (a few ticks pass).
    std::thread::sleep(Wait::from_millis(2500));
    assert!(runs(server.port).is_empty());
    std::fs::write(&clock, "2030-01-01 01:00:00").unwrap();
    let first = wait_for(server.port, 1);
    assert_eq!(first.len(), 1, "{first:?}");
    drop(server);

    // Down for eight days; started again, it runs the schedule once, not eight times.
    std::fs::write(&clock, "2030-01-09 05:00:00").unwrap();
    let server = Server::start_with_env(&c.path, &env);
    wait_for(server.port, 2);
    std::thread::sleep(Wait::from_millis(2500));
    let all = runs(server.port);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].contains("scheduled for 2030-01-02 01:00:00"),
        "{all:?}"
    );
    let shown = mariadb(server.port, "SHOW SCHEDULES");
    assert!(shown.out.contains("2030-01-10 01:00:00"), "{}", shown.out);
    let snapshots = mariadb(server.port, "SHOW SNAPSHOT ON r");
    assert!(
        snapshots.out.contains("2030-01-01-01-00-00-000")
            && snapshots.out.contains("2030-01-09-05-00-00-000"),
        "{}",
        snapshots.out
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_run_is_checked_against_what_its_owner_holds_when_it_fires() {
    use srbackup::session::privileges::Identity;
    let (dir, _repo, mut s) = hub_with_local_repo().await;
    let cluster = dir.path().join("c");
    run(
        &mut s,
        "CREATE USER 'ops'@'%' IDENTIFIED BY 'pw-ops-1';
         GRANT REPOSITORY ON SYSTEM TO 'ops'@'%';
         GRANT EXPORT ON ALL TABLES IN DATABASE sr_hub TO 'ops'@'%'",
    )
    .await;
    // Created by ops through the server's path: authorized, then run.
    let text = "CREATE SCHEDULE ops_daily FOR BACKUP DATABASE sr_hub SNAPSHOT ops_daily TO r ON (TABLE sr_event) RECURRING '@daily'";
    let stmt = srbackup::sql::parse(text).unwrap().remove(0);
    s.set_identity(Identity::new("ops", "%"));
    s.authorize(&stmt).unwrap();
    s.execute(&stmt).await.unwrap();
    let shown = rows(&mut s, "SHOW SCHEDULES").await;
    assert_eq!(shown.get(0, "Owner"), Some("'ops'@'%'"));
    s.clear_identity();
    // A user without EXPORT cannot create one.
    run(
        &mut s,
        "CREATE USER 'viewer'@'%' IDENTIFIED BY 'pw-viewer-1'; GRANT REPOSITORY ON SYSTEM TO 'viewer'@'%'",
    )
    .await;
    s.set_identity(Identity::new("viewer", "%"));
    let denied = s.authorize(&stmt).unwrap_err().to_string();
    assert!(denied.contains("EXPORT"), "{denied}");
    // Nor see, pause or drop ops' schedule: to them it does not exist.
    assert!(rows(&mut s, "SHOW SCHEDULES").await.rows.is_empty());
    for control in ["PAUSE SCHEDULE ops_daily", "DROP SCHEDULE ops_daily"] {
        let stmt = srbackup::sql::parse(control).unwrap().remove(0);
        let err = s.execute(&stmt).await.unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{control}: {err}");
    }
    s.clear_identity();
    assert_eq!(
        rows(&mut s, "SHOW SCHEDULES").await.get(0, "State"),
        Some("ACTIVE")
    );

    let due = next_run(&mut s, "ops_daily");
    let mut scheduler = Scheduler::open(&cluster).unwrap();
    let tick = scheduler.tick(due).await.unwrap();
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    let job = s
        .engine()
        .catalog()
        .view()
        .job(tick.started[0].1)
        .unwrap()
        .unwrap();
    assert_eq!(job.owner, "'ops'@'%'");

    // EXPORT revoked: the next run fails with the access error and starts nothing.
    run(
        &mut s,
        "REVOKE EXPORT ON ALL TABLES IN DATABASE sr_hub FROM 'ops'@'%'",
    )
    .await;
    assert!(
        srbackup::exec::run_job(s.engine(), tick.started[0].1, &Silent)
            .await
            .unwrap()
            .succeeded()
    );
    let tick = scheduler.tick(due + Duration::days(1)).await.unwrap();
    assert!(tick.started.is_empty(), "{tick:?}");
    assert_eq!(tick.failed.len(), 1, "{tick:?}");
    assert!(tick.failed[0].1.contains("EXPORT"), "{:?}", tick.failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_schedules_due_at_once_on_one_database_both_run_one_after_the_other() {
    let (dir, _repo, mut s) = hub_with_local_repo().await;
    let cluster = dir.path().join("c");
    run(
        &mut s,
        "CREATE SCHEDULE a FOR BACKUP DATABASE sr_hub SNAPSHOT a TO r ON (TABLE sr_event) RECURRING '0 * * * *';
         CREATE SCHEDULE b FOR BACKUP DATABASE sr_hub SNAPSHOT b TO r ON (TABLE sr_region) RECURRING '0 * * * *'",
    )
    .await;
    let due = next_run(&mut s, "a");
    let mut scheduler = Scheduler::open(&cluster).unwrap();
    let tick = scheduler.tick(due).await.unwrap();
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    assert_eq!(tick.skipped, vec!["b".to_string()]);
    // b is deferred a minute, not an hour, and says why.
    assert_eq!(next_run(&mut s, "b"), due + Duration::seconds(60));
    let runs = s.engine().catalog().view().schedule_runs(None).unwrap();
    let deferred = runs.iter().find(|r| r.schedule_name == "b").unwrap();
    assert!(
        deferred
            .message
            .as_deref()
            .unwrap()
            .contains("is held by BACKUP job"),
        "{deferred:?}"
    );
    assert!(
        srbackup::exec::run_job(s.engine(), tick.started[0].1, &Silent)
            .await
            .unwrap()
            .succeeded()
    );
    let tick = scheduler.tick(due + Duration::seconds(60)).await.unwrap();
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    assert_eq!(tick.started[0].0, "b");
    // Back on its hour afterwards.
    assert_eq!(next_run(&mut s, "b"), due + Duration::hours(1));
}

/// A job accepted just before the server died, before its run named it (found by review): the
/// next scheduler links it to the run instead of failing the run.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_accepted_but_not_yet_linked_is_found_not_failed() {
    let (dir, _repo, mut s) = hub_with_local_repo().await;
    let cluster = dir.path().join("c");
    run(
        &mut s,
        "CREATE SCHEDULE h FOR BACKUP DATABASE sr_hub SNAPSHOT h TO r ON (TABLE sr_event) RECURRING '@hourly'",
    )
    .await;
    let row = s.engine().catalog().view().schedule("h").unwrap().unwrap();
    let due = row.next_run.clone().unwrap();
    // What a scheduler does up to its crash: the claim, then the accepted job.
    let run_id = s
        .engine()
        .catalog()
        .write(|tx| {
            tx.claim_schedule_run(
                row.id,
                &due,
                "2099-01-01 00:00:00",
                "2000-01-01 00:00:00",
                RunState::Running,
                None,
            )
        })
        .unwrap()
        .unwrap();
    let stmt = srbackup::sql::parse(&row.command).unwrap().remove(0);
    let job = srbackup::exec::submit(
        s.engine(),
        &stmt,
        &row.command,
        srbackup::exec::StartOptions {
            snapshot_time: None,
            owner: "",
        },
    )
    .await
    .unwrap();
    let mut scheduler = Scheduler::open(&cluster).unwrap();
    let tick = scheduler.tick(Utc::now()).await.unwrap();
    assert!(tick.closed.is_empty(), "{tick:?}");
    let runs = s.engine().catalog().view().schedule_runs(None).unwrap();
    let linked = runs.iter().find(|r| r.id == run_id).unwrap();
    assert_eq!(
        (linked.job_id, linked.state),
        (Some(job), RunState::Running)
    );
    assert!(
        srbackup::exec::run_job(s.engine(), job, &Silent)
            .await
            .unwrap()
            .succeeded()
    );
    let tick = scheduler.tick(Utc::now()).await.unwrap();
    assert_eq!(tick.closed, vec![(run_id, RunState::Success)]);
}
