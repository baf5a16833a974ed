//! `renkei demo`: a small demo network in a fresh data folder.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use mailbox::auth::password;
use mailbox::threads::Threads;
use mailbox::{Directory, Facility, FacilityCode, NewAccount, Role};

pub const ACCOUNTS_FILE: &str = "demo-accounts.tsv";
/// The demo's recovery key shares (a real network never keeps them on the server).
pub const RECOVERY_DIR: &str = "demo-recovery";
const DEMO_CUSTODIANS: [&str; 3] = [
    "香川県医師会 事務局長",
    "さぬき中央病院 院長",
    "ヘルプデスク 責任者",
];
const HEADER: &str = "id\tpassword\trole\tfacility_code\tfacility_name";

struct DemoFacility {
    first_nine: &'static str,
    name: &'static str,
    city: &'static str,
    address: &'static str,
    phone: &'static str,
    departments: &'static [&'static str],
    people: &'static [(Role, &'static str)],
    /// What its liaison office lists for booking: name, opening hours.
    equipment: &'static [(&'static str, &'static str)],
}

const FACILITIES: &[DemoFacility] = &[
    DemoFacility {
        first_nine: "371020001",
        name: "さぬき中央病院",
        city: "高松市",
        address: "香川県高松市番町1-1-1",
        phone: "087-000-0001",
        departments: &["放射線科", "内科", "外科", "整形外科"],
        people: &[
            (Role::Doctor, "讃岐 一郎（放射線科）"),
            (Role::Doctor, "高松 花子（内科）"),
            (Role::Clerk, "坂出 明美"),
            (Role::Liaison, "地域連携室 丸亀"),
        ],
        equipment: &[
            ("CT（64列）", "平日 9:00-12:00、13:00-16:00"),
            (
                "MRI（1.5T）",
                "平日 9:00-16:00 (60分); 土 9:00-12:00 (60分)",
            ),
        ],
    },
    DemoFacility {
        first_nine: "371030001",
        name: "ことひら内科クリニック",
        city: "琴平町",
        address: "香川県仲多度郡琴平町1-2",
        phone: "0877-00-0002",
        departments: &["内科"],
        people: &[
            (Role::Doctor, "琴平 健"),
            (Role::Clerk, "善通寺 由美"),
            (Role::Liaison, "連携窓口 多度津"),
        ],
        equipment: &[("骨密度測定（DXA）", "月・水・金 14:00-17:00")],
    },
    DemoFacility {
        first_nine: "373010001",
        name: "せとうち歯科医院",
        city: "観音寺市",
        address: "香川県観音寺市坂本町3-4",
        phone: "0875-00-0003",
        departments: &["歯科", "口腔外科"],
        people: &[
            (Role::Doctor, "観音寺 歯子"),
            (Role::Clerk, "三豊 直子"),
            (Role::Liaison, "連携窓口 詫間"),
        ],
        equipment: &[("歯科用CT", "平日 9:00-12:00")],
    },
];

/// Creates the demo network unless the folder already has one; returns the
/// account list (the same text as `demo-accounts.tsv`).
pub async fn ensure(
    directory: &Directory,
    threads: &Threads,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let file = data_dir.join(ACCOUNTS_FILE);
    if !directory.facilities().await?.is_empty() {
        if file.exists() {
            return std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()));
        }
        bail!(
            "the data folder {} already holds a network that is not a demo; use an empty folder for the demo",
            data_dir.display()
        );
    }
    // The recovery key first, so every key made below is sealed to it. A real
    // network keeps these shares offline; the demo keeps them here, and says so.
    let shares = data_dir.join(RECOVERY_DIR);
    directory
        .keys()
        .init_recovery_with(|key| {
            let names: Vec<String> = DEMO_CUSTODIANS.iter().map(|n| n.to_string()).collect();
            crate::admin::recovery::write_shares(key, &names, &shares).map(|_| ())
        })
        .await?;
    let mut tsv = String::from(HEADER);
    tsv.push('\n');
    let start = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap_or_default();
    for spec in FACILITIES {
        let code = FacilityCode::with_check_digit(spec.first_nine)?;
        let facility = directory
            .add_facility(Facility {
                code: code.clone(),
                name: spec.name.into(),
                address: spec.address.into(),
                phone: spec.phone.into(),
                departments: spec.departments.iter().map(|d| d.to_string()).collect(),
                publish_details: true,
                city: spec.city.into(),
                public_note: String::new(),
                active_from: start,
                active_until: None,
                approval_ref: None,
            })
            .await?;
        for (role, name) in spec.people {
            let pw = password::issue();
            let account = directory
                .add_account_with_password(
                    NewAccount {
                        role: *role,
                        facility: Some(code.clone()),
                        name: (*name).into(),
                        email: None,
                    },
                    &pw,
                    false,
                )
                .await?;
            writeln!(
                tsv,
                "{}\t{}\t{}\t{}\t{}",
                account.id,
                pw.expose(),
                role,
                code,
                facility.name
            )?;
        }
    }
    // Each member signs in once, which completes the facility-key grants that
    // members created after the first are waiting for; each liaison office
    // lists its facility's equipment, so bookings have something to book.
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if let [id, pw, role, code, ..] = cols.as_slice() {
            let (token, _) = directory
                .sign_in(id, &mailbox::Password::new(*pw), None)
                .await?;
            if *role == Role::Liaison.as_str() {
                let session = directory.authenticate(&token).await?;
                let equipment = FACILITIES
                    .iter()
                    .filter(|f| code.starts_with(f.first_nine))
                    .flat_map(|f| f.equipment);
                for (name, hours) in equipment {
                    threads.add_resource(&session, name, hours).await?;
                }
            }
            directory.sign_out(&token).await?;
        }
    }
    let pw = password::issue();
    let operator = directory
        .add_account_with_password(
            NewAccount {
                role: Role::Operator,
                facility: None,
                name: "香川県医師会 ヘルプデスク".into(),
                email: None,
            },
            &pw,
            false,
        )
        .await?;
    writeln!(tsv, "{}\t{}\toperator\t-\t-", operator.id, pw.expose())?;
    write_private(&file, &tsv)?;
    Ok(tsv)
}

pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    write_private_bytes(path, text.as_bytes())
}

/// Like [`write_private`], for bytes (a credential letter's PDF).
pub fn write_private_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// The account list as an aligned table for the terminal.
pub fn print_accounts(tsv: &str) {
    println!("Demo accounts (also in {ACCOUNTS_FILE} in the data folder):");
    for line in tsv.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() == 5 {
            println!(
                "  {:<10} {:<20} {:<9} {:<11} {}",
                cols[0], cols[1], cols[2], cols[3], cols[4]
            );
        }
    }
    println!(
        "Network recovery key (demo only): three shares in {RECOVERY_DIR}/ in the data folder, any two of which open it"
    );
    println!(
        "  (--recovery-key {RECOVERY_DIR}/recovery-share-1.txt --recovery-key {RECOVERY_DIR}/recovery-share-2.txt)."
    );
    println!(
        "  WARNING: a real network never keeps them on the server: each custodian keeps one share offline."
    );
}
