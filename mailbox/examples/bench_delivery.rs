//! `bench/delivery`: end-to-end delivery on one backend. Run through
//! `bench/delivery/run.sh`, which builds this in release and runs it on SQLite and
//! on a throwaway PostgreSQL cluster.
//!
//! What one item is: a doctor at a clinic sends a small sealed item (subject and
//! text of a few hundred bytes, patient data with consent, no attachment) to a
//! doctor at a hospital. `Postroom::send` seals it to 4 key slots (recipient,
//! sender, both facilities' oversight keys) and commits envelope, slots and queue
//! row; the delivery worker (`Deliverer::deliver_due` driven like
//! `transport::delivery::run`, 50 ms idle poll) writes the mailbox entries (and
//! whatever else delivery does, e.g. notification rows) and marks the row done.
//!
//! Two phases:
//! - sustained: C client tasks submit back to back for D seconds; items/s is the
//!   number submitted divided by the wall time from the first submission to the
//!   moment the queue holds no pending row (every item delivered).
//! - latency: an open-loop schedule at R items/s for S seconds (each submission is
//!   spawned at its scheduled instant, whatever the previous ones are doing);
//!   latency = scheduled submit instant → the item's row is visible in the
//!   recipient's inbox to a separate reader connection, which polls every
//!   `POLL` for the item IDs still outstanding (a committed row is seen at most
//!   one poll interval late). Timing from the scheduled instant, not the actual
//!   start, so a stalled dispatcher counts against the figure.
//!
//! Usage: bench_delivery sqlite DIR | postgres ADMIN_URL
//!        [--clients C] [--secs D] [--rate R] [--latency-secs S] [--workers W]
//! Prints human-readable progress and one `RESULT` line for the table.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use mailbox::delivery::{Deliverer, DeliveryPolicy};
use mailbox::notify::{Notices, NotifyPolicy};
use mailbox::postroom::{BlobStore, Consent, ConsentMethod, Outgoing, Postroom, Recipient};
use mailbox::store::{Store, StoreTarget};
use mailbox::{
    AuthPolicy, CurrentSession, Directory, Facility, FacilityCode, NetworkPolicy, NewAccount,
    Password, Role,
};
use renkei_crypto::{BlindIndexKey, LockParams};
use tokio::sync::Mutex;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

const HOSPITAL: &str = "3710123450";
const CLINIC: &str = "3710300017";
/// Same as `transport::delivery::IDLE_POLL` (this crate cannot depend on transport).
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How often the latency observer looks for outstanding items.
const POLL: Duration = Duration::from_millis(2);

struct Args {
    target: Target,
    clients: usize,
    secs: f64,
    rate: f64,
    latency_secs: f64,
    workers: usize,
}

enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let usage = "usage: bench_delivery sqlite DIR | postgres ADMIN_URL [--clients C] [--secs D] \
                 [--rate R] [--latency-secs S] [--workers W]";
    let target = match (it.next().as_deref(), it.next()) {
        (Some("sqlite"), Some(dir)) => Target::Sqlite(dir.into()),
        (Some("postgres"), Some(url)) => Target::Postgres(url),
        _ => return Err(usage.into()),
    };
    let mut args = Args {
        target,
        clients: 32,
        secs: 15.0,
        rate: 500.0,
        latency_secs: 10.0,
        workers: 1,
    };
    fn num<T: FromStr>(v: Option<String>, name: &str) -> Res<T> {
        v.as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{name} needs a number").into())
    }
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--clients" => args.clients = num(it.next(), "--clients")?,
            "--secs" => args.secs = num(it.next(), "--secs")?,
            "--rate" => args.rate = num(it.next(), "--rate")?,
            "--latency-secs" => args.latency_secs = num(it.next(), "--latency-secs")?,
            "--workers" => args.workers = num(it.next(), "--workers")?,
            _ => return Err(usage.into()),
        }
    }
    if args.clients == 0 || args.workers == 0 || args.rate <= 0.0 {
        return Err("clients, workers and rate must be positive".into());
    }
    Ok(args)
}

/// The store under test, and a separate pool for the latency observer.
enum Observer {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

async fn open(target: &Target) -> Res<(Arc<dyn Store>, Observer, std::path::PathBuf)> {
    match target {
        Target::Sqlite(dir) => {
            let db = dir.join("renkei.db");
            let store = mailbox::store::open(&StoreTarget::Sqlite(db.clone())).await?;
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .read_only(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            Ok((store, Observer::Sqlite(pool), dir.join("blobs")))
        }
        Target::Postgres(admin) => {
            use sqlx::Connection;
            let name = format!("renkei_bench_{:016x}", rand::random::<u64>());
            let mut conn = sqlx::PgConnection::connect(admin).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b)
                .ok_or("the PostgreSQL URL needs a database path")?;
            let url = format!("{base}/{name}");
            let store = mailbox::store::open(&StoreTarget::Postgres(url.clone())).await?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            let blobs = std::env::temp_dir().join(format!("{name}-blobs"));
            Ok((store, Observer::Postgres(pool), blobs))
        }
    }
}

impl Observer {
    /// Which of `ids` are in `principal`'s inbox now.
    async fn visible(&self, principal: &str, ids: &[String]) -> Res<Vec<String>> {
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        // By the items' own keys: `principal || ''` keeps SQLite's planner off
        // the per-principal index, which would walk the reader's whole inbox
        // (tens of thousands of rows by the latency phase) on every poll.
        let sql = format!(
            "SELECT envelope_id FROM mailbox_entries WHERE principal || '' = $1 AND folder = 'inbox' \
             AND envelope_id IN ({})",
            marks.join(", ")
        );
        Ok(match self {
            Self::Sqlite(pool) => {
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(principal);
                for id in ids {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            }
            Self::Postgres(pool) => {
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(principal);
                for id in ids {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            }
        })
    }
}

struct Net {
    store: Arc<dyn Store>,
    post: Arc<Postroom>,
    sender: CurrentSession,
    reader: String,
    reader_id: mailbox::AccountId,
}

async fn person(
    dir: &Directory,
    store: &dyn Store,
    role: Role,
    facility: &str,
    name: &str,
) -> Res<(CurrentSession, mailbox::Account)> {
    let pw = Password::new(format!("Bench-{name}-2026!pass"));
    let email = format!("{name}@{facility}.example.jp");
    let a = dir
        .add_account_with_password(
            NewAccount {
                role,
                facility: Some(FacilityCode::parse(facility)?),
                name: name.into(),
                email: Some(email.clone()),
            },
            &pw,
            false,
        )
        .await?;
    // Verified addresses, so delivery has someone to notify.
    store.set_email(&a.id, Some(&email), true).await?;
    let (_, session) = dir.sign_in(a.id.as_str(), &pw, None).await?;
    Ok((session, a))
}

async fn setup(store: Arc<dyn Store>, blobs: std::path::PathBuf) -> Res<Net> {
    let policy = AuthPolicy {
        // Only sign-in (setup) unlocks keys; the measured path never does.
        key_lock: LockParams::insecure_for_tests(),
        second_factor_required: false,
        ..AuthPolicy::default()
    };
    let audit = mailbox::records::audit::Audit::new(store.clone());
    let dir = Arc::new(Directory::assemble(
        store.clone(),
        audit.clone(),
        mailbox::clock::system(),
        policy,
        NetworkPolicy::default(),
    ));
    for code in [HOSPITAL, CLINIC] {
        dir.add_facility(Facility {
            code: FacilityCode::parse(code)?,
            name: format!("施設 {code}"),
            address: String::new(),
            phone: String::new(),
            departments: vec![],
            publish_details: false,
            city: String::new(),
            public_note: String::new(),
            active_from: NaiveDate::from_ymd_opt(2026, 4, 1).ok_or("date")?,
            active_until: None,
            approval_ref: None,
        })
        .await?;
    }
    // A clerk per facility signs in once, which makes the facility's oversight key.
    person(&dir, store.as_ref(), Role::Clerk, HOSPITAL, "clerk-h").await?;
    person(&dir, store.as_ref(), Role::Clerk, CLINIC, "clerk-c").await?;
    let (sender, _) = person(&dir, store.as_ref(), Role::Doctor, CLINIC, "gp").await?;
    let (_, reader) = person(&dir, store.as_ref(), Role::Doctor, HOSPITAL, "rad").await?;
    let post = Arc::new(Postroom::new(
        dir.clone(),
        store.clone(),
        audit,
        BlobStore::new(blobs),
        Arc::new(BlindIndexKey::generate()?),
    ));
    Ok(Net {
        store,
        post,
        sender,
        reader: format!("account:{}", reader.id.as_str()),
        reader_id: reader.id,
    })
}

impl Net {
    async fn send(&self, n: u64) -> mailbox::Result<String> {
        let today = chrono::Local::now().date_naive();
        self.post
            .send(
                &self.sender,
                Outgoing {
                    kind: "reading_request".into(),
                    to: vec![Recipient::Person(self.reader_id.clone())],
                    subject: format!("胸部CT 読影依頼 #{n} — 3 か月前の画像との比較をお願いします"),
                    patient_id: format!("P-{:06}", n % 1_000_000),
                    patient_name: "香川 太郎".into(),
                    body: "いつもお世話になっております。咳嗽が続く 68 歳男性です。\
                           胸部単純CTを撮影しました。右上葉の結節影について、前回画像との比較を\
                           含めて読影をお願いいたします。既往歴: 高血圧、喫煙歴 40 pack-years。\
                           ご多忙のところ恐縮ですが、よろしくお願い申し上げます。"
                        .into(),
                    consent: Some(Consent {
                        obtained_on: today,
                        method: ConsentMethod::Written,
                        obtained_by: "坂出 明美".into(),
                        given_by: mailbox::postroom::ConsentGiver::Patient,
                    }),
                },
                vec![],
            )
            .await
    }

    async fn pending(&self) -> Res<i64> {
        Ok(self.store.count_deliveries("pending").await?)
    }

    async fn wait_drained(&self, limit: Duration) -> Res<Instant> {
        let until = Instant::now() + limit;
        loop {
            if self.pending().await? == 0 {
                return Ok(Instant::now());
            }
            if Instant::now() > until {
                return Err("the queue did not drain".into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Notification rows are queued with each delivery, as in `serve` with a relay.
fn notices(store: &Arc<dyn Store>) -> Arc<Notices> {
    Arc::new(Notices::new(
        store.clone(),
        NotifyPolicy {
            enabled: true,
            ..NotifyPolicy::default()
        },
    ))
}

/// The delivery loop of `transport::delivery::run`, stoppable by a flag.
fn start_workers(
    wake: &Arc<tokio::sync::Notify>,
    store: &Arc<dyn Store>,
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let deliverer =
                Deliverer::new(store.clone(), DeliveryPolicy::default()).notifying(notices(store));
            let stop = stop.clone();
            let wake = wake.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let pause = match deliverer.deliver_due().await {
                        Ok(0) => IDLE_POLL,
                        Ok(_) => Duration::ZERO,
                        Err(e) => {
                            eprintln!("delivery batch failed: {e}");
                            Duration::from_secs(1)
                        }
                    };
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = wake.notified(), if !pause.is_zero() && pause <= IDLE_POLL => {}
                    }
                }
            })
        })
        .collect()
}

async fn sustained(net: &Arc<Net>, clients: usize, secs: f64) -> Res<(u64, f64, f64)> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(secs);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (net, done, failed, counter) =
            (net.clone(), done.clone(), failed.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                match net.send(n).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("send failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let submitted_at = start.elapsed().as_secs_f64();
    let backlog = net.pending().await?;
    let end = net.wait_drained(Duration::from_secs(600)).await?;
    let n = done.load(Ordering::Relaxed);
    if failed.load(Ordering::Relaxed) > 0 {
        return Err(format!("{} submissions failed", failed.load(Ordering::Relaxed)).into());
    }
    let wall = end.duration_since(start).as_secs_f64();
    println!(
        "  sustained: {n} items by {clients} clients; submitted in {submitted_at:.2} s \
         ({:.0}/s acknowledged), backlog {backlog} at the end of submission, all delivered after {wall:.2} s",
        n as f64 / submitted_at
    );
    Ok((n, n as f64 / wall, n as f64 / submitted_at))
}

struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
    n: usize,
    achieved: f64,
}

async fn latency(net: &Arc<Net>, observer: Observer, rate: f64, secs: f64) -> Res<Latency> {
    let count = (rate * secs).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    // id -> scheduled instant (filled when send returns); id -> first seen instant.
    let scheduled: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let outstanding: Arc<Mutex<Vec<String>>> = Arc::default();
    // id -> instant the submission was acknowledged, to split the latency.
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let finished = Arc::new(AtomicBool::new(false));

    let obs = {
        let (seen, outstanding, finished) = (seen.clone(), outstanding.clone(), finished.clone());
        let principal = net.reader.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let ids: Vec<String> = outstanding.lock().await.clone();
                if ids.is_empty() {
                    if finished.load(Ordering::Relaxed) {
                        return Ok::<(), BoxError>(());
                    }
                    continue;
                }
                let mut found = Vec::new();
                for chunk in ids.chunks(500) {
                    found.extend(observer.visible(&principal, chunk).await?);
                }
                let now = Instant::now();
                if !found.is_empty() {
                    let mut seen = seen.lock().await;
                    for id in &found {
                        seen.insert(id.clone(), now);
                    }
                    outstanding.lock().await.retain(|id| !seen.contains_key(id));
                }
            }
        })
    };

    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut sends = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let (net, scheduled, outstanding, acked) = (
            net.clone(),
            scheduled.clone(),
            outstanding.clone(),
            acked.clone(),
        );
        sends.push(tokio::spawn(async move {
            let id = net.send(1_000_000 + i).await?;
            acked.lock().await.insert(id.clone(), Instant::now());
            scheduled.lock().await.insert(id.clone(), at.into_std());
            outstanding.lock().await.push(id);
            Ok::<(), BoxError>(())
        }));
    }
    let dispatched = start.elapsed().as_secs_f64();
    for s in sends {
        s.await??;
    }
    finished.store(true, Ordering::Relaxed);
    let waited = tokio::time::timeout(Duration::from_secs(120), obs).await;
    match waited {
        Ok(r) => r??,
        Err(_) => return Err("items never became visible".into()),
    }
    let scheduled = scheduled.lock().await;
    let seen = seen.lock().await;
    let mut ms: Vec<f64> = scheduled
        .iter()
        .filter_map(|(id, at)| {
            seen.get(id)
                .map(|s| s.duration_since(*at).as_secs_f64() * 1e3)
        })
        .collect();
    if ms.len() != scheduled.len() {
        return Err("some items were never seen".into());
    }
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    // The two halves: scheduled → acknowledged, acknowledged → visible.
    let acked = acked.lock().await;
    let mut sub: Vec<f64> = Vec::new();
    let mut del: Vec<f64> = Vec::new();
    for (id, at) in scheduled.iter() {
        if let (Some(a), Some(s)) = (acked.get(id), seen.get(id)) {
            sub.push(a.duration_since(*at).as_secs_f64() * 1e3);
            del.push(s.saturating_duration_since(*a).as_secs_f64() * 1e3);
        }
    }
    sub.sort_by(f64::total_cmp);
    del.sort_by(f64::total_cmp);
    let at = |v: &[f64], p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    if !sub.is_empty() {
        println!(
            "  of which submit→acknowledged p50 {:.1} ms, p99 {:.1} ms; acknowledged→visible p50 {:.1} ms, p99 {:.1} ms",
            at(&sub, 0.5),
            at(&sub, 0.99),
            at(&del, 0.5),
            at(&del, 0.99)
        );
    }
    Ok(Latency {
        p50: pct(0.50),
        p99: pct(0.99),
        max: ms[ms.len() - 1],
        n: ms.len(),
        achieved: count as f64 / dispatched,
    })
}

async fn run() -> Res<()> {
    let args = parse_args()?;
    let backend = match &args.target {
        Target::Sqlite(_) => "sqlite",
        Target::Postgres(_) => "postgres",
    };
    let (store, observer, blobs) = open(&args.target).await?;
    let net = Arc::new(setup(store.clone(), blobs).await?);
    // Alone: one client submitting with no worker running, then one worker draining.
    let t = Instant::now();
    for i in 0..300 {
        net.send(i).await?;
    }
    let send_ms = t.elapsed().as_secs_f64() * 1e3 / 300.0;
    let d = Deliverer::new(store.clone(), DeliveryPolicy::default()).notifying(notices(&store));
    let t = Instant::now();
    while d.deliver_due().await? > 0 {}
    let deliver_ms = t.elapsed().as_secs_f64() * 1e3 / 300.0;
    println!(
        "  alone: one client {send_ms:.2} ms per submission; one worker {deliver_ms:.2} ms per delivery"
    );

    // Check the shape of one item: 4 key slots, delivered to the reader's inbox.
    let stop = Arc::new(AtomicBool::new(false));
    let workers = start_workers(
        &net.post.delivery_wake(),
        &store,
        args.workers,
        stop.clone(),
    );
    let probe = net.send(0).await?;
    let slots = store.envelope_slots(&probe).await?;
    if slots.len() != 4 {
        return Err(format!("expected 4 key slots, got {}", slots.len()).into());
    }
    // Warm-up: connections, caches, the sealing thread pool.
    for i in 0..200 {
        net.send(i).await?;
    }
    net.wait_drained(Duration::from_secs(60)).await?;
    if observer.visible(&net.reader, &[probe]).await?.len() != 1 {
        return Err("the probe item is not in the reader's inbox".into());
    }
    // Each delivery queues the reader's notification mail (the reader has a
    // verified address): 300 + 1 + 200 items so far.
    let queued = store.count_notifications("pending").await?;
    if queued < 501 {
        return Err(format!("expected a notification per item, found {queued}").into());
    }
    println!(
        "{backend}: {} client tasks, {} delivery worker(s), {} tokio worker threads",
        args.clients,
        args.workers,
        tokio::runtime::Handle::current().metrics().num_workers()
    );

    let (_, sustained_rate, ack_rate) = sustained(&net, args.clients, args.secs).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lat = latency(&net, observer, args.rate, args.latency_secs).await?;
    println!(
        "  latency at {:.0}/s offered ({:.0}/s dispatched) for {} items: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rate, lat.achieved, lat.n, lat.p50, lat.p99, lat.max
    );
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await?;
    }
    println!(
        "RESULT backend={backend} sustained={sustained_rate:.0} acked={ack_rate:.0} \
         rate={:.0} p50={:.1} p99={:.1} max={:.1}",
        args.rate, lat.p50, lat.p99, lat.max
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench_delivery: {e}");
        std::process::exit(1);
    }
}
